"""Pause, resume and stop over REST, mid-run (tuned server: the scripted agent streams a word per 0.07 s)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from runplane.agents.providers.base import ChatMessage
from runplane.agents.providers.scripted import plan_reply
from runplane.agents.tools import TOOL_SPECS
from tests.runs.helpers import (
    LONG_PROMPT,
    POLL,
    assert_contiguous,
    assert_ends,
    events_after,
    get_run,
    make_thread,
    read_stream,
    start_run,
    wait_for_status,
)
from tests.support import UserHandle

# What the scripted agent answers to a prompt without commands (agents/providers/scripted.py).
FULL_REPLY = plan_reply([ChatMessage("user", LONG_PROMPT)], TOOL_SPECS)[0]


async def wait_for_event(
    client: httpx.AsyncClient, user: UserHandle, run_id: str, kind: str, timeout: float = 20.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = await events_after(client, user, run_id)
        if any(e["type"] == kind for e in events):
            return events
        await asyncio.sleep(POLL)
    raise AssertionError(f"no {kind} event in run {run_id} after {timeout}s")


async def wait_until_quiet(
    client: httpx.AsyncClient, user: UserHandle, run_id: str, quiet: float = 0.8, timeout: float = 20.0
) -> int:
    """Waits until the run's log stops growing for `quiet` seconds; returns its length."""
    deadline = time.monotonic() + timeout
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_count = len(await events_after(client, user, run_id))
        if now_count != count:
            count, since = now_count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return count
        await asyncio.sleep(0.2)
    raise AssertionError(f"run {run_id} never went quiet")


async def post(
    client: httpx.AsyncClient, user: UserHandle, run_id: str, verb: str, expect: int = 200
) -> dict[str, Any]:
    response = await client.post(f"/api/agent-run/{run_id}/{verb}", headers=user.headers)
    assert response.status_code == expect, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_pause_mid_reply_holds_the_run_until_resumed(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    await wait_for_event(tuned_client, carol, run_id, "content")  # mid-reply
    assert (await post(tuned_client, carol, run_id, "pause"))["status"] == "paused"
    await post(tuned_client, carol, run_id, "pause", expect=409)  # already paused

    # The reply in flight may finish streaming, but the run does not move on (nor complete) while paused.
    reader = asyncio.create_task(read_stream(tuned_client, run_id, carol.headers, timeout=60))
    await wait_until_quiet(tuned_client, carol, run_id)
    await asyncio.sleep(0.5)
    assert (await get_run(tuned_client, carol, run_id))["status"] == "paused"
    assert not reader.done()
    assert (await post(tuned_client, carol, run_id, "resume"))["status"] == "running"
    await post(tuned_client, carol, run_id, "resume", expect=409)  # running, not paused (or already done)

    frames = await reader
    assert_contiguous(frames)
    assert_ends(frames, "completed")
    assert [f["status"] for f in frames if f["type"] == "status"] == [
        "queued",
        "running",
        "paused",
        "running",
        "completed",
    ]
    run = await get_run(tuned_client, carol, run_id)
    assert run["status"] == "completed" and run["usage"]["total_tokens"] > 0


async def test_stop_mid_run_ends_the_stream_with_stopped(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    reader = asyncio.create_task(read_stream(tuned_client, run_id, carol.headers))
    await wait_for_event(tuned_client, carol, run_id, "content")
    stopped_at = time.monotonic()
    stop = await post(tuned_client, carol, run_id, "stop")
    assert stop["agent_run_id"] == run_id and stop["stop_requested"] is True
    frames = await reader
    assert_contiguous(frames)
    assert_ends(frames, "stopped")
    # The stop cut the model's reply short (it did not wait for its end, ~2 s away when the stop was sent).
    assert time.monotonic() - stopped_at < 5
    said = "".join(f["content"] for f in frames if f["type"] == "content")
    assert said and len(said) < len(FULL_REPLY) / 2, said
    run = await wait_for_status(tuned_client, carol, run_id, "stopped", timeout=5)
    assert run["completed_at"] is not None and run["error"] is None
    status = (await tuned_client.get(f"/api/agent-run/{run_id}/status", headers=carol.headers)).json()
    assert status["status"] == "stopped"
    await post(tuned_client, carol, run_id, "stop")  # idempotent
    assert (await events_after(tuned_client, carol, run_id))[-1]["status"] == "stopped"
    # The thread is free for the next run.
    again = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    await post(tuned_client, carol, again, "stop")
    await wait_for_status(tuned_client, carol, again, "stopped")


async def test_stop_while_paused(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    await wait_for_status(tuned_client, carol, run_id, "running")
    await post(tuned_client, carol, run_id, "pause")
    await post(tuned_client, carol, run_id, "stop")
    frames = await read_stream(tuned_client, run_id, carol.headers, timeout=10)
    assert_ends(frames, "stopped")
    assert [f["status"] for f in frames if f["type"] == "status"][-2:] == ["paused", "stopped"]
