"""The preview proxy: `/preview/<token>/<path>` reverse-proxies HTTP and WebSocket (hot reload) to a
sandbox's dev server. The signed token in the path is the only credential, so an iframe can load the
page and every relative asset without an Authorization header (resolvers/sandboxes.open_preview).

Pages that reference assets by absolute path ("/main.js") only work when the dev server is told
its base path (vite --base, PUBLIC_URL...) or when previews get a host of their own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
import websockets
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from runplane.errors import DomainError
from runplane.resolvers import sandboxes as ops
from runplane.services import Services

log = logging.getLogger("runplane.preview")

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "authorization",
        "content-length",
    }
)
# uvicorn writes its own `server` and `date` on every response: passing the dev server's too would send each twice.
OUR_OWN = frozenset({"server", "date"})
WS_MAX_MESSAGE = 16 * 1024 * 1024


def routes() -> list[BaseRoute]:
    return [
        Route("/preview/{token}", _add_slash, methods=METHODS),
        Route("/preview/{token}/{path:path}", proxy_http, methods=METHODS),
        WebSocketRoute("/preview/{token}/{path:path}", proxy_websocket),
    ]


async def _add_slash(request: Request) -> Response:
    """Relative URLs of the page resolve against the token's "directory"."""
    return RedirectResponse(f"/preview/{request.path_params['token']}/", status_code=308)


def _services(scope_owner: Request | WebSocket) -> Services:
    services: Services = scope_owner.app.state.services
    return services


async def proxy_http(request: Request) -> Response:
    token = request.path_params["token"]
    target = await ops.open_preview(_services(request), token)
    # The client connects inside that sandbox's network namespace (sandboxes/upstream.py).
    upstream = httpx.URL(
        scheme="http", host=target.sandbox.upstream_host, port=target.port, raw_path=_upstream_target(request, token)
    )
    body = await request.body() if _has_body(request) else None  # bounded by BodyLimitMiddleware
    client = _services(request).sandboxes.http
    outgoing = client.build_request(
        request.method, upstream, headers=_request_headers(request, target.port, token), content=body
    )
    try:
        answer = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        raise ops.PreviewUnavailable(f"The dev server did not answer: {type(exc).__name__}") from None
    response = StreamingResponse(
        _relay(answer, target), status_code=answer.status_code, background=BackgroundTask(answer.aclose)
    )
    response.raw_headers = _response_headers(answer, target.port, token)
    return response


def _upstream_target(connection: Request | WebSocket, token: str) -> bytes:
    """Path and query as the client sent them (still percent-encoded), less the /preview/<token> prefix."""
    raw: bytes = connection.scope.get("raw_path") or connection.url.path.encode()
    prefix = f"/preview/{token}".encode()
    path = raw[len(prefix) :] if raw.startswith(prefix) else b"/" + connection.path_params["path"].encode()
    query: bytes = connection.scope.get("query_string", b"")
    return (path or b"/") + (b"?" + query if query else b"")


def _has_body(request: Request) -> bool:
    return "content-length" in request.headers or "transfer-encoding" in request.headers


def _request_headers(request: Request, port: int, token: str) -> list[tuple[str, str]]:
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP]
    client = request.client.host if request.client else ""
    return [
        *headers,
        ("host", f"127.0.0.1:{port}"),
        ("x-forwarded-host", request.headers.get("host", "")),
        ("x-forwarded-proto", request.url.scheme),
        ("x-forwarded-for", client),
        ("x-forwarded-prefix", f"/preview/{token}"),
    ]


def _response_headers(answer: httpx.Response, port: int, token: str) -> list[tuple[bytes, bytes]]:
    """Passed through as they are (raw bytes, so content-encoding and length stay true), except
    hop-by-hop ones; redirects to the dev server's own address come back through the proxy."""
    out = []
    for name, value in answer.headers.raw:
        lower = name.decode("latin-1").lower()
        if (lower in HOP_BY_HOP and lower != "content-length") or lower in OUR_OWN:
            continue
        if lower == "location":
            value = _rewrite_location(value.decode("latin-1"), port, token).encode("latin-1")
        out.append((lower.encode("latin-1"), value))
    return out


def _rewrite_location(location: str, port: int, token: str) -> str:
    prefix = f"/preview/{token}"
    for origin in (f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://0.0.0.0:{port}"):
        if location.startswith(origin + "/") or location == origin:
            return prefix + (location[len(origin) :] or "/")
    if location.startswith("/") and not location.startswith("//"):
        return prefix + location
    return location


async def _relay(answer: httpx.Response, target: ops.PreviewTarget) -> AsyncIterator[bytes]:
    async for chunk in answer.aiter_raw():
        target.sandbox.touch()
        yield chunk


# -- WebSocket ---------------------------------------------------------------------------------------------
async def proxy_websocket(websocket: WebSocket) -> None:
    """Accepted once the token checks out and the dev server took the upgrade (with the subprotocol it
    chose, e.g. vite-hmr); then frames flow both ways until either side closes."""
    token = websocket.path_params["token"]
    try:
        target = await ops.open_preview(_services(websocket), token)
    except DomainError:
        await websocket.close(code=4404)  # before accept: the handshake is refused (HTTP 403)
        return
    url = f"ws://127.0.0.1:{target.port}" + _upstream_target(websocket, token).decode("latin-1")
    offered = [Subprotocol(p) for p in websocket.scope.get("subprotocols", [])]
    try:
        sock = await target.sandbox.connect(target.port)  # inside the sandbox's network namespace
        upstream = await connect(
            url,
            sock=sock,
            subprotocols=offered or None,
            proxy=None,
            open_timeout=10,
            max_size=WS_MAX_MESSAGE,
            compression=None,
            user_agent_header=None,
        )
    except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
        await websocket.close(code=4502)
        return
    async with upstream:
        await websocket.accept(subprotocol=upstream.subprotocol)
        await _pump_both(websocket, upstream, target)


async def _pump_both(websocket: WebSocket, upstream: ClientConnection, target: ops.PreviewTarget) -> None:
    tasks = [
        asyncio.create_task(_client_to_upstream(websocket, upstream, target)),
        asyncio.create_task(_upstream_to_client(websocket, upstream, target)),
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=upstream.close_code or 1000)


async def _client_to_upstream(websocket: WebSocket, upstream: ClientConnection, target: ops.PreviewTarget) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            await upstream.close()
            return
        target.sandbox.touch()
        if message.get("text") is not None:
            await upstream.send(message["text"])
        elif message.get("bytes") is not None:
            await upstream.send(message["bytes"])


async def _upstream_to_client(websocket: WebSocket, upstream: ClientConnection, target: ops.PreviewTarget) -> None:
    with contextlib.suppress(websockets.exceptions.ConnectionClosed):
        async for message in upstream:
            target.sandbox.touch()
            if isinstance(message, str):
                await websocket.send_text(message)
            else:
                await websocket.send_bytes(message)
