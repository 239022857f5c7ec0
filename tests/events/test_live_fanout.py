"""Live groups over real sockets: batched, pre-framed WebSocket writes and coalesced SSE chunks deliver
every event once and in order; a socket that goes away mid-batch does not disturb the others; a slow
socket is detached (bounded memory), catches up from the log, or is closed with 1013 if it stays stuck.

The test plays the worker: the run is 'running' under its lease, and events are logged then published
in bursts (no await on a subscriber between publishes), so batches are many events long."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets

from runplane.agents import lifecycle
from runplane.events.live import LiveGroup
from runplane.events.log import append_event
from runplane.models import AgentRun, Thread
from runplane.rest_compat import sse
from runplane.schema import fanout
from tests.runs.helpers import make_thread
from tests.support import LiveServer, UserHandle

QUERY = "subscription($id: ID!, $after: Int!) { runEvents(runId: $id, after: $after) { sequence type payload } }"


class HeldRun:
    def __init__(self, server: LiveServer, run_id: uuid.UUID) -> None:
        self.services = server.app.state.services
        self.run_id = run_id

    async def burst(self, count: int, size: int = 20) -> None:
        """Logs `count` events, then publishes them back to back."""
        events = [await append_event(self.run_id, "content", {"content": f"c{i}-" + "x" * size}) for i in range(count)]
        for event in events:
            await self.services.event_bus.publish(event)

    async def finish(self) -> None:
        await lifecycle.finish(self.services, self.run_id, "completed")


@pytest.fixture
async def held(server: LiveServer, client: httpx.AsyncClient, alice: UserHandle) -> HeldRun:
    thread = await Thread.get(id=await make_thread(client, alice))
    run = await AgentRun.create(
        owner_id=alice.user_id,
        project_id=thread.project_id,
        thread_id=thread.id,
        active_thread_id=thread.id,
        model="scripted/demo",
        status="running",
        worker_id="test-live-fanout",
        lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    return HeldRun(server, run.id)


def small_socket(server: LiveServer) -> socket.socket:
    """A client socket with a tiny receive buffer (no autotuning up to tens of MB): once its reader
    stops, the server's side fills after a few MB."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.connect(("127.0.0.1", server.port))
    sock.setblocking(False)
    return sock


async def subscribe(
    server: LiveServer,
    user: UserHandle,
    run_id: uuid.UUID,
    *,
    after: int = 0,
    op: str = "1",
    slow: bool = False,
    **options: Any,
) -> Any:
    if slow:  # stops reading its socket while the test does not recv()
        options.update(max_queue=1, sock=small_socket(server), compression=None)
    ws = await websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"], ping_interval=None, **options)  # type: ignore[list-item]
    await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {user.access_token}"}}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(
        json.dumps(
            {
                "id": op,
                "type": "subscribe",
                "payload": {"query": QUERY, "variables": {"id": str(run_id), "after": after}},
            }
        )
    )
    return ws


async def read_all(ws: Any, op: str = "1") -> tuple[list[int], str]:
    """Sequences received until the operation ends, and how it ended."""
    sequences: list[int] = []
    try:
        async for raw in ws:
            message = json.loads(raw)
            assert message.get("id") == op, message
            if message["type"] == "next":
                sequences.append(message["payload"]["data"]["runEvents"]["sequence"])
            else:
                return sequences, message["type"]
    except websockets.ConnectionClosed:
        pass
    return sequences, "closed"


async def until_live(run: HeldRun, sockets: list[Any], ops: list[str] | None = None) -> None:
    """Publishes one event and waits until every socket has it: they are then live members."""
    await run.burst(1)
    for ws, op in zip(sockets, ops or ["1"] * len(sockets), strict=False):
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert message["type"] == "next" and message["id"] == op, message


def expected(last: int, after: int = 0) -> list[int]:
    return list(range(after + 1, last + 1))


async def test_batched_frames_reach_every_socket_in_order(server: LiveServer, alice: UserHandle, held: HeldRun) -> None:
    ops = [f"op-{i % 3}" for i in range(12)]  # three framings in one group
    # Half negotiate permessage-deflate (frames built per socket), half not (one pre-framed batch shared).
    sockets = [
        await subscribe(server, alice, held.run_id, op=op, compression=None if i % 2 else "deflate")
        for i, op in enumerate(ops)
    ]
    await until_live(held, sockets, ops)
    for _ in range(3):
        await held.burst(150)
    await held.finish()
    results = await asyncio.gather(*(read_all(ws, op=op) for ws, op in zip(sockets, ops, strict=False)))
    for sequences, end in results:
        assert end == "complete"
        assert sequences == expected(452, after=1)  # 450 content + the terminal status, each once, in order
    for ws in sockets:
        await ws.close()


async def test_late_joiner_replays_the_log_then_goes_live(server: LiveServer, alice: UserHandle, held: HeldRun) -> None:
    early = await subscribe(server, alice, held.run_id)
    await until_live(held, [early])
    await held.burst(40)
    late = await subscribe(server, alice, held.run_id, after=5)  # behind the group: replays 6..41 itself
    resumed = await subscribe(server, alice, held.run_id, after=41)
    await held.burst(40)
    await held.finish()
    assert await read_all(early) == (expected(82, after=1), "complete")
    assert await read_all(late) == (expected(82, after=5), "complete")
    assert await read_all(resumed) == (expected(82, after=41), "complete")


async def test_a_socket_dropped_mid_batch_does_not_disturb_the_others(
    server: LiveServer, alice: UserHandle, held: HeldRun
) -> None:
    sockets = [await subscribe(server, alice, held.run_id) for _ in range(6)]
    await until_live(held, sockets)
    publishing = asyncio.create_task(held.burst(300, size=2000))
    await asyncio.sleep(0)
    sockets[2].transport.abort()  # no close handshake: a client that vanished
    sockets[4].transport.abort()
    await publishing
    await held.burst(50)
    await held.finish()
    for index, ws in enumerate(sockets):
        if index in (2, 4):
            continue
        assert await read_all(ws) == (expected(352, after=1), "complete")


async def test_a_slow_socket_catches_up_from_the_log(
    server: LiveServer, alice: UserHandle, held: HeldRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "LIVE_BOUND_BYTES", 0)  # any byte the kernel does not take detaches it
    detaches_before = LiveGroup.detaches
    fast = await subscribe(server, alice, held.run_id)
    slow = await subscribe(server, alice, held.run_id, slow=True)
    await until_live(held, [fast, slow])
    await held.burst(300, size=30_000)  # ~9 MB: more than the socket buffers hold
    fast_result = await asyncio.wait_for(read_all_until(fast, 301), 30)
    await asyncio.sleep(0.5)
    assert LiveGroup.detaches > detaches_before  # it did leave the live group
    await held.burst(20)
    await held.finish()
    assert fast_result + (await read_all(fast))[0] == expected(322, after=1)
    assert await read_all(slow) == (expected(322, after=1), "complete")


async def read_all_until(ws: Any, last: int) -> list[int]:
    sequences: list[int] = []
    while not sequences or sequences[-1] < last:
        sequences.append(json.loads(await ws.recv())["payload"]["data"]["runEvents"]["sequence"])
    return sequences


async def test_a_stuck_socket_is_closed_with_1013_and_others_get_everything(
    server: LiveServer, alice: UserHandle, held: HeldRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fanout, "LIVE_BOUND_BYTES", 0)
    monkeypatch.setattr(fanout, "SLOW_CLOSE_SECONDS", 0.5)
    fast = await subscribe(server, alice, held.run_id)
    stuck = await subscribe(server, alice, held.run_id, slow=True)
    await until_live(held, [fast, stuck])
    await held.burst(300, size=30_000)
    fast_first = await asyncio.wait_for(read_all_until(fast, 301), 30)
    await asyncio.sleep(1.5)  # past SLOW_CLOSE_SECONDS without draining
    await held.finish()
    assert fast_first + (await read_all(fast))[0] == expected(302, after=1)
    received, end = await read_all(stuck)
    assert end == "closed" and stuck.close_code == 1013, (end, stuck.close_code)
    assert received == expected(len(received) + 1, after=1)  # what it got was in order, without holes


async def sse_sequences(
    client: httpx.AsyncClient, user: UserHandle, run_id: uuid.UUID, after: int = 0
) -> AsyncIterator[int]:
    async with client.stream(
        "GET", f"/api/agent-run/{run_id}/stream", params={"token": user.access_token, "after": after}
    ) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                yield json.loads(line[6:])["sequence"]


async def collect_sse(
    client: httpx.AsyncClient, user: UserHandle, run_id: uuid.UUID, first: asyncio.Event, after: int = 0
) -> list[int]:
    got: list[int] = []
    async for sequence in sse_sequences(client, user, run_id, after):
        got.append(sequence)
        first.set()
    return got


@pytest.mark.parametrize("bound", [sse.BOUND_BYTES, 1])  # 1: every batch detaches it, every catch-up is from the log
async def test_sse_chunks_deliver_everything_once_in_order(
    client: httpx.AsyncClient, alice: UserHandle, held: HeldRun, bound: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sse, "BOUND_BYTES", bound)
    readies = [asyncio.Event() for _ in range(5)]
    readers = [
        asyncio.create_task(collect_sse(client, alice, held.run_id, ready, after=3 if i == 4 else 0))
        for i, ready in enumerate(readies)
    ]
    await held.burst(4)
    await asyncio.wait_for(asyncio.gather(*(ready.wait() for ready in readies)), 10)
    for _ in range(3):
        await held.burst(100)
    await held.finish()
    results = await asyncio.wait_for(asyncio.gather(*readers), 30)
    for index, sequences in enumerate(results):
        assert sequences == expected(305, after=3 if index == 4 else 0)
