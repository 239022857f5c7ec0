"""One connection (an HTTP request or a WebSocket) as the streams running on it see it: the stream slot it
holds, and the credential it lives by.

`ConnectionMiddleware` gives every connection one. When the connection's ASGI call ends, however it ends (the
stream finished, the client went away before the first byte, a task was cancelled, an exception), its stream
slot goes back and its credential is no longer watched. When the credential a connection follows lapses (the
token expired, the session was revoked: runplane/auth/watch.py), the connection ends: a WebSocket is closed
with 4403 and the reason; an HTTP response (a run or session SSE stream, a GraphQL stream over HTTP) ends its
body, after an `event: unauthenticated` frame when it is SSE. Clients re-authenticate by reconnecting (an
EventSource that reconnects with the old `?token=` gets a 401 and stops)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runplane.auth.principal import Principal
from runplane.auth.watch import CredentialWatch, Watcher
from runplane.ratelimit.leases import StreamLeases, StreamScope

CREDENTIAL_LOST_CLOSE_CODE = 4403  # graphql-ws clients retry it (new connectionParams); 4401 they do not


class Connection:
    def __init__(self, streams: StreamScope, credentials: CredentialWatch, end: Callable[[], object]) -> None:
        self.streams = streams
        self.lost: str | None = None  # why the credential lapsed, once it has
        self._credentials = credentials
        self._watcher: Watcher | None = None
        self._end = end

    def follow_credentials(self, principal: Principal | None) -> None:
        """From now on the connection ends when the principal's token expires or its session is revoked. The first
        credential followed is the connection's (a WebSocket authenticates once; a request carries one)."""
        if principal is None or self._watcher is not None or principal.via == "api_key":
            return
        self._watcher = self._credentials.watch(principal, self._lose)

    def close(self) -> None:
        self.streams.close()
        if self._watcher is not None:
            self._watcher.cancel()

    def _lose(self, reason: str) -> None:
        self.lost = reason
        self._end()


class ConnectionMiddleware:
    def __init__(self, app: ASGIApp, leases: StreamLeases, credentials: CredentialWatch) -> None:
        self.app = app
        self.leases = leases
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in {"http", "websocket"}:
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        assert task is not None
        progress = _Progress()
        connection = Connection(StreamScope(self.leases), self.credentials, task.cancel)
        scope.setdefault("state", {})["connection"] = connection
        try:
            await self.app(scope, receive, progress.tracking(send))
        except asyncio.CancelledError:
            if connection.lost is None or task.uncancel() > 0:  # not (only) ours: a shutdown, the server's own
                raise
            with contextlib.suppress(OSError, RuntimeError):  # the client may be gone already
                await progress.end(send, connection.lost)
        finally:
            connection.close()


class _Progress:
    """How far the response (or the WebSocket) got, so that ending it early completes it properly."""

    def __init__(self) -> None:
        self.started = self.ended = False
        self.websocket = self.event_stream = False

    def tracking(self, send: Send) -> Send:
        async def tracked(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                self.started = True
                self.event_stream = (
                    dict(message.get("headers") or []).get(b"content-type", b"").startswith(b"text/event-stream")
                )
            elif kind == "websocket.accept":
                self.started = self.websocket = True
            elif (kind == "http.response.body" and not message.get("more_body", False)) or kind == "websocket.close":
                self.ended = True
            await send(message)

        return tracked

    async def end(self, send: Send, reason: str) -> None:
        """Close the socket with 4403, or end the response's body (after a last SSE frame saying why); a response
        that had not started yet (the credential lapsed between the slot and the first byte) is a 401."""
        if self.ended:
            return
        if not self.started:
            body = json.dumps({"detail": reason, "code": "UNAUTHENTICATED"}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if self.websocket:
            await send({"type": "websocket.close", "code": CREDENTIAL_LOST_CLOSE_CODE, "reason": reason})
            return
        if self.event_stream:
            data = json.dumps({"detail": reason, "code": "UNAUTHENTICATED"})
            frame = f"event: unauthenticated\ndata: {data}\n\n".encode()
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
