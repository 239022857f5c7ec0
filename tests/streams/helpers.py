"""Holding, dropping and counting a user's streams from the client side, with real connections."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import websockets

from tests.runs.helpers import LONG_PROMPT, make_thread, start_run, wait_for_status
from tests.support import UserHandle

STREAMS = 4  # RUNPLANE_MAX_STREAMS_PER_USER's default
RUN_EVENTS = "subscription($id: ID!) { runEvents(runId: $id) { sequence type } }"


async def paused_run(http: httpx.AsyncClient, user: UserHandle) -> str:
    """A run that keeps its streams open (paused mid-reply) until `stop_run`."""
    thread_id = await make_thread(http, user)
    run_id = str((await start_run(http, user, thread_id, prompt=LONG_PROMPT))["agent_run_id"])
    await wait_for_status(http, user, run_id, "running")
    paused = await http.post(f"/api/agent-run/{run_id}/pause", headers=user.headers)
    assert paused.status_code == 200, paused.text
    return run_id


async def stop_run(http: httpx.AsyncClient, user: UserHandle, run_id: str) -> None:
    assert (await http.post(f"/api/agent-run/{run_id}/stop", headers=user.headers)).status_code == 200


def run_stream_url(run_id: str) -> str:
    return f"/api/agent-run/{run_id}/stream"


async def hold(stack: AsyncExitStack, http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    response = await stack.enter_async_context(http.stream("GET", url, headers=headers))
    assert response.status_code == 200, (await response.aread()).decode()
    return response


async def started(stack: AsyncExitStack, response: httpx.Response) -> bytes:
    """The first bytes of a held response. The byte iterator stays referenced until the stack closes: a dropped
    one is finalized by the garbage collector, which closes the response (the client would leave)."""
    chunks = response.aiter_bytes()
    stack.push_async_callback(chunks.aclose)
    return await anext(chunks)


async def assert_refused(http: httpx.AsyncClient, user: UserHandle, run_id: str) -> None:
    """Every slot is held: one more stream is a 429."""
    refused = await http.get(run_stream_url(run_id), headers=user.headers)
    assert refused.status_code == 429, refused.text
    assert refused.json()["detail"] == f"At most {STREAMS} concurrent streams per user"


async def assert_all_free(http: httpx.AsyncClient, user: UserHandle, run_id: str, within: float = 5.0) -> float:
    """Within `within` seconds the user holds STREAMS run streams at once again; returns how long it took."""
    started = time.monotonic()
    while True:
        async with AsyncExitStack() as stack:
            responses = [
                await stack.enter_async_context(http.stream("GET", run_stream_url(run_id), headers=user.headers))
                for _ in range(STREAMS)
            ]
            if all(r.status_code == 200 for r in responses):
                return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"the user's {STREAMS} stream slots were not all free after {within}s")
        await asyncio.sleep(0.2)


async def slots_held_by(
    http: httpx.AsyncClient, user: UserHandle, run_id: str, open_streams: Callable[[AsyncExitStack], Awaitable[None]]
) -> None:
    """While `open_streams` holds its streams the user has no free slot; once they are gone, all are free."""
    async with AsyncExitStack() as stack:
        await open_streams(stack)
        await assert_refused(http, user, run_id)
    await assert_all_free(http, user, run_id)


async def abandon(port: int, request: bytes, *, read: int = 0) -> None:
    """A client that sends `request`, reads `read` bytes of the answer (0: none), then vanishes with a TCP reset."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    if read:
        got = b""
        while len(got) < read:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, got
            got += chunk
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, not FIN
    writer.close()


def get_request(path: str, user: UserHandle, *, method: str = "GET", body: bytes = b"", accept: str = "*/*") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {user.access_token}\r\n"
        f"Accept: {accept}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


@asynccontextmanager
async def graphql_socket(ws_url: str, token: str) -> AsyncIterator[Any]:
    """A graphql-transport-ws socket, acknowledged. It reads whatever arrives, as a browser's WebSocket does
    (`max_queue=None`): these tests leave events unread, and websockets' receive backpressure then paused reading,
    so each close waited out its 10 s close_timeout for a close frame it could not read, and a send in that state
    can wait forever (python-websockets issues 1555 and 1563; a CI pass hung in this module)."""
    subprotocols = [websockets.Subprotocol("graphql-transport-ws")]
    async with websockets.connect(ws_url, subprotocols=subprotocols, max_queue=None) as ws:
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        async with asyncio.timeout(10):
            ack = json.loads(await ws.recv())
        assert ack["type"] == "connection_ack", ack
        yield ws


async def subscribe(ws: Any, op_id: str, query: str, variables: dict[str, Any]) -> None:
    await ws.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}}))


async def next_message(ws: Any, op_id: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message for operation `op_id` (pings and other operations' messages skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "ping":
                await ws.send(json.dumps({"type": "pong"}))
            elif message.get("id") == op_id:
                return dict(message)
