"""Sockets and streams follow their credentials: a WebSocket is closed (4403, with the reason) and a long SSE
stream ends once the session behind its token is revoked (logout, a refresh token presented twice) or the
token expires; clients get in again by reconnecting with a fresh token. Driven by the npm graphql-ws client
and real HTTP streams. Across processes: tests/streams/test_stream_leases_cluster.py."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt

from runplane.auth.tokens import AccessClaims, issue_access_token
from runplane.config import Settings
from tests.runs.clients import run_node
from tests.runs.helpers import sse_messages
from tests.spawned import JWT_SECRET, Process
from tests.streams.helpers import graphql_socket, next_message, paused_run, run_stream_url, stop_run
from tests.support import UserHandle

REAUTH_JS = Path(__file__).with_name("js") / "reauth.mjs"
ME = "{ me { id } }"


def short_token(user: UserHandle, seconds: int) -> tuple[str, float]:
    """An access token of the user's session that expires in `seconds` (signed like the server's own, with the
    secret every spawned test server shares), and its expiry as Unix time."""
    claims = jwt.decode(user.access_token, options={"verify_signature": False})
    settings = Settings(jwt_secret=JWT_SECRET)
    session = AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]), list(claims["abilities"]))
    token = issue_access_token(settings, session, ttl_seconds=seconds)
    return token, float(jwt.decode(token, options={"verify_signature": False})["exp"])


async def reauth_client(
    server: Process, run_id: str, *tokens: str, on_line: Any = None
) -> tuple[list[dict[str, Any]], int]:
    return await run_node(REAUTH_JS, server.ws_url, run_id, *tokens, on_line=on_line, timeout=30)


async def test_logout_closes_the_socket_and_the_client_cannot_come_back_with_that_token(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    run_id = await paused_run(http, user)
    logged_out_at: list[float] = []

    async def on_line(line: dict[str, Any]) -> None:
        if "sequence" in line and not logged_out_at:
            assert (await http.post("/api/auth/logout", headers=user.headers)).status_code in (200, 204)
            logged_out_at.append(time.monotonic())

    lines, code = await reauth_client(limited, run_id, user.access_token, on_line=on_line)
    closed = [line for line in lines if "closed" in line]
    assert closed[0] == {"closed": 4403, "reason": "Session revoked"}, lines
    assert code == 2 and lines[-1]["code"] == 4403, lines  # the retry with the same token is refused too
    assert [line for line in lines if "connected" in line] == [{"connected": 1}]


async def test_an_expired_token_closes_the_socket_and_a_fresh_one_resumes(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    run_id = await paused_run(http, user)
    brief, expires_at = short_token(user, 8)  # node starts slowly on a loaded machine
    closed_at: list[float] = []

    async def on_line(line: dict[str, Any]) -> None:
        if "closed" in line:
            closed_at.append(time.time())
        if line.get("connected") == 2:  # back in with the fresh token: let the run end
            await stop_run(http, user, run_id)

    lines, code = await reauth_client(limited, run_id, brief, user.access_token, on_line=on_line)
    assert code == 0 and {"complete": True} in lines, lines
    assert {"closed": 4403, "reason": "Token expired"} in lines, lines
    assert expires_at - 0.1 <= closed_at[0] < expires_at + 5  # at the expiry, not before (slack: a loaded CI)
    assert [line["connected"] for line in lines if "connected" in line] == [1, 2]
    statuses = [line for line in lines if line.get("type") == "status"]
    assert statuses, lines  # the resubscription replays and follows the run to its end


async def test_operations_on_a_socket_stop_with_its_session(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    """Queries and mutations too: after logout the socket closes rather than answering `me` or creating."""
    async with graphql_socket(limited.ws_url, user.access_token) as ws:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ME}}))
        assert (await next_message(ws, "1"))["payload"]["data"]["me"]["id"]  # answered while the session stands
        assert (await http.post("/api/auth/logout", headers=user.headers)).status_code in (200, 204)
        async with asyncio.timeout(5):
            while True:
                try:
                    await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": ME}}))
                    message = json.loads(await ws.recv())
                    assert message.get("type") != "next", message  # no answer to a revoked session
                except Exception as closed:  # websockets.ConnectionClosed
                    assert getattr(closed, "rcvd", None) is not None and closed.rcvd.code == 4403, closed  # type: ignore[attr-defined]
                    break


async def test_a_run_stream_ends_with_its_session_and_does_not_resume_with_that_token(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    run_id = await paused_run(http, user)
    url = f"{run_stream_url(run_id)}?token={user.access_token}"  # as an EventSource sends it
    events: list[str] = []
    async with asyncio.timeout(10):
        async with http.stream("GET", url) as response:
            assert response.status_code == 200
            async for message in sse_messages(response):
                events.append(message.event or "message")
                if len(events) == 1:
                    assert (await http.post("/api/auth/logout", headers=user.headers)).status_code in (200, 204)
                if message.event == "unauthenticated":
                    assert json.loads(message.data) == {"detail": "Session revoked", "code": "UNAUTHENTICATED"}
    assert events[-1] == "unauthenticated", events  # and then the server ended the response
    again = await http.get(url, headers={"Last-Event-ID": "1"})  # an EventSource's reconnection
    assert again.status_code == 401, again.text


async def test_a_run_stream_ends_when_its_token_expires(
    limited: Process, http: httpx.AsyncClient, user: UserHandle
) -> None:
    run_id = await paused_run(http, user)
    brief, expires_at = short_token(user, 8)  # node starts slowly on a loaded machine
    async with asyncio.timeout(15):
        async with http.stream("GET", run_stream_url(run_id), headers={"Authorization": f"Bearer {brief}"}) as response:
            assert response.status_code == 200
            last = [m async for m in sse_messages(response)][-1]
    assert last.event == "unauthenticated" and json.loads(last.data)["detail"] == "Token expired"
    assert expires_at - 0.1 <= time.time() < expires_at + 5
    await stop_run(http, user, run_id)
