"""GET /api/agent-run/{id}/stream read the way an EventSource reads it: `data:` JSON frames with `id:` lines,
`: ping` heartbeats, `?token=` auth, and reconnection with Last-Event-ID that neither loses nor repeats."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx

from tests.fakes.tcp_proxy import TCPProxy
from tests.runs.clients import node_eventsource
from tests.runs.conftest import TUNED_HEARTBEAT
from tests.runs.helpers import (
    LONG_PROMPT,
    SSEParser,
    assert_contiguous,
    assert_ends,
    events_after,
    make_thread,
    read_stream,
    sse_messages,
    start_run,
    wait_for_status,
)
from tests.runs.procs import Process
from tests.support import UserHandle


async def test_frames_are_documented_sse(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    await wait_for_status(client, alice, run_id, "completed")
    async with client.stream("GET", f"/api/agent-run/{run_id}/stream", headers=alice.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        raw = (await response.aread()).decode()
    parser = SSEParser()
    messages = [m for line in raw.split("\n") if (m := parser.feed_line(line)) is not None]
    assert parser.retry_ms and parser.retry_ms > 0  # reconnection delay for EventSource
    assert messages and all(m.event == "message" for m in messages)
    frames = [m.json() for m in messages]
    assert [m.id for m in messages] == [str(f["sequence"]) for f in frames]  # id: = sequence, for Last-Event-ID
    assert_contiguous(frames)
    assert frames[0] == {**frames[0], "type": "status", "status": "queued"}
    content = [f for f in frames if f["type"] == "content"]
    assert content and all(isinstance(f["content"], str) and f["message_id"] for f in content)
    assert_ends(frames, "completed")


async def test_token_query_parameter_and_auth_failures(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    # EventSource cannot send headers: the token rides in the query string.
    frames = await read_stream(client, run_id, {}, params={"token": alice.access_token})
    assert_ends(frames, "completed")
    for headers, params, status in [
        ({}, None, 401),
        ({}, {"token": "not-a-jwt"}, 401),
        ({}, {"token": bob.access_token}, 404),
        (alice.headers, {"after": "x"}, 422),
    ]:
        response = await client.get(f"/api/agent-run/{run_id}/stream", headers=headers, params=params)
        assert response.status_code == status, response.text
        assert "detail" in response.json()


async def test_resume_after_a_sequence_of_a_finished_run(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    everything = await read_stream(client, run_id, alice.headers)
    tail = await read_stream(client, run_id, {**alice.headers, "Last-Event-ID": "2"})
    assert tail == everything[2:]
    by_query = await read_stream(client, run_id, alice.headers, params={"after": 3})
    assert by_query == everything[3:]
    # Past the end of a finished run: 204 at once, which tells an EventSource to stop reconnecting.
    past_end = await client.get(
        f"/api/agent-run/{run_id}/stream", headers={**alice.headers, "Last-Event-ID": str(len(everything))}
    )
    assert past_end.status_code == 204 and past_end.content == b""


async def _read_until_dropped(
    client: httpx.AsyncClient, run_id: str, headers: dict[str, str], keep: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Read `keep` frames, then drop the TCP connection (what a flaky network does to an EventSource)."""
    frames: list[dict[str, Any]] = []
    last_id = None
    async with client.stream("GET", f"/api/agent-run/{run_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        async for message in sse_messages(response):
            frames.append(message.json())
            last_id = message.id
            if len(frames) >= keep:
                break
    return frames, last_id


async def test_reconnect_with_last_event_id_mid_run_loses_and_repeats_nothing(
    tuned_client: httpx.AsyncClient, carol: UserHandle
) -> None:
    """Like an EventSource: read, lose the connection mid-run, reconnect with the last id seen; twice."""
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    seen: list[dict[str, Any]] = []
    headers = dict(carol.headers)
    for keep in (3, 5):
        frames, last_id = await asyncio.wait_for(_read_until_dropped(tuned_client, run_id, headers, keep), 20)
        seen += frames
        assert last_id == str(seen[-1]["sequence"])
        headers["Last-Event-ID"] = last_id
        await asyncio.sleep(0.5)  # events keep coming while nobody listens; they must not be lost
    rest = await read_stream(tuned_client, run_id, headers)
    assert rest and rest[0]["sequence"] == seen[-1]["sequence"] + 1
    seen += rest
    assert_contiguous(seen)  # no loss, no repeat
    assert_ends(seen, "completed")
    assert seen == await events_after(tuned_client, carol, run_id)  # exactly the log


async def test_heartbeat_pings_while_the_run_is_silent(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    """A paused run is silent: the stream sends `: ping` every RUNPLANE_SSE_HEARTBEAT_SECONDS (0.3 s here)."""
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    await wait_for_status(tuned_client, carol, run_id, "running")
    assert (await tuned_client.post(f"/api/agent-run/{run_id}/pause", headers=carol.headers)).status_code == 200
    await wait_for_status(tuned_client, carol, run_id, "paused")
    pings: list[float] = []
    frames: list[dict[str, Any]] = []

    async def read() -> None:
        async with tuned_client.stream("GET", f"/api/agent-run/{run_id}/stream", headers=carol.headers) as response:
            async for line in response.aiter_lines():
                if line == ": ping":
                    pings.append(time.monotonic())
                    if len(pings) == 4:
                        resumed = await tuned_client.post(f"/api/agent-run/{run_id}/resume", headers=carol.headers)
                        assert resumed.status_code == 200, resumed.text
                elif line.startswith("data: "):
                    frames.append(httpx.Response(200, content=line[6:]).json())

    await asyncio.wait_for(read(), 30)
    assert len(pings) >= 4
    gaps = [b - a for a, b in itertools.pairwise(pings[:4])]
    assert all(TUNED_HEARTBEAT * 0.5 <= gap <= TUNED_HEARTBEAT * 6 for gap in gaps), gaps
    assert_contiguous(frames)
    assert_ends(frames, "completed")


async def test_a_real_eventsource_reconnects_through_a_dropped_connection(
    tuned: Process, tuned_client: httpx.AsyncClient, carol: UserHandle
) -> None:
    """The npm `eventsource` client behind a TCP proxy that cuts the connection mid-run: the client
    reconnects by itself (after the stream's `retry:` delay) with Last-Event-ID; nothing is lost or repeated."""
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    async with TCPProxy("127.0.0.1", tuned.port or 0) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/api/agent-run/{run_id}/stream?token={carol.access_token}"
        cut: list[int] = []

        async def on_line(line: dict[str, Any]) -> None:
            if "frame" in line and line["frame"]["sequence"] >= 3 and not cut:
                cut.append(proxy.sever())

        lines, code = await node_eventsource(url, on_line=on_line)
    assert code == 0 and lines[-1] == {"closed": True}, lines
    assert cut == [2]  # both legs of the one open connection
    received = [line for line in lines if "frame" in line]
    frames = [line["frame"] for line in received]
    assert [line["id"] for line in received] == [str(f["sequence"]) for f in frames]
    assert_contiguous(frames)  # no loss, no repeat across the reconnection
    assert_ends(frames, "completed")
    # What the client had seen when the connection broke is what it asked to resume after.
    broke_at = next(i for i, line in enumerate(lines) if "error" in line)
    seen_before = [line["id"] for line in lines[:broke_at] if "frame" in line][-1]
    requests = [c for c in proxy.connections if c.head]  # (a client may also open a spare connection)
    assert len(requests) >= 2 and sum("open" in line for line in lines) >= 2, (lines, requests)
    assert requests[0].header("last-event-id") is None
    assert requests[1].header("last-event-id") == seen_before
    assert all(r.header("last-event-id") for r in requests[1:])
