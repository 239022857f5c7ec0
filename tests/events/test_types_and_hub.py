"""RunEventMessage/ControlMessage wire forms and the bounded fan-out hub."""

from __future__ import annotations

import asyncio

import pytest

from runplane.events import (
    ControlMessage,
    ControlSignal,
    FanoutHub,
    RunEventMessage,
    SlowConsumer,
    StreamGap,
)


def test_event_serializes_once_and_round_trips() -> None:
    event = RunEventMessage("r1", 3, "content", {"content": "hé"})
    assert event.json_bytes is event.json_bytes  # cached, not rebuilt per subscriber
    copy = RunEventMessage.from_json(event.json_bytes)
    assert copy == event
    assert copy.json_bytes == event.json_bytes


def test_received_bytes_are_reused_not_reserialized() -> None:
    raw = b'{"run_id":"r1","seq":1,"type":"content","payload":{"a":1},"created_at":"2024-01-01T00:00:00+00:00"}'
    assert RunEventMessage.from_json(raw).json_bytes is raw


def test_terminal_status_detection() -> None:
    assert RunEventMessage("r", 1, "status", {"status": "completed"}).is_terminal
    assert not RunEventMessage("r", 1, "status", {"status": "running"}).is_terminal
    assert not RunEventMessage("r", 1, "content", {"status": "completed"}).is_terminal


def test_control_message_wire_forms() -> None:
    ours = ControlMessage("r", ControlSignal.ERROR, {"message": "boom"})
    parsed = ControlMessage.from_wire("r", ours.json_bytes)
    assert parsed == ours and parsed is not None and parsed.ends_stream
    bare = ControlMessage.from_wire("r", b"END_STREAM")  # what other publishers send
    assert bare is not None and bare.signal is ControlSignal.END_STREAM
    stop = ControlMessage.from_wire("r", b'"STOP"')
    assert stop is not None and not stop.ends_stream
    assert ControlMessage.from_wire("r", b"NONSENSE") is None


async def test_slow_subscriber_is_cut_off_without_blocking_others() -> None:
    hub = FanoutHub(max_queue=10)
    slow, fast = hub.add("r"), hub.add("r")
    received: list[int] = []

    async def consume() -> None:
        async for item in fast:
            assert isinstance(item, RunEventMessage)
            received.append(item.sequence)
            if item.sequence == 100:
                return

    task = asyncio.create_task(consume())
    for seq in range(1, 101):
        hub.deliver("r", RunEventMessage("r", seq, "content", {}))
        await asyncio.sleep(0)  # the fast reader keeps up; the slow one never reads
    await asyncio.wait_for(task, 5)
    assert received == list(range(1, 101))
    assert slow.cut_off and hub.cut_off_count == 1 and hub.subscriber_count("r") == 1
    assert len(slow._items) == 0  # its backlog was freed at once
    with pytest.raises(SlowConsumer):
        await slow.get()


async def test_close_ends_iteration_and_reports_idle_run() -> None:
    idle: list[str] = []
    hub = FanoutHub(on_idle=idle.append)
    a, b = hub.add("r"), hub.add("r")
    a.close()
    assert idle == []
    waiter = asyncio.create_task(anext(aiter(b), "ended"))
    await asyncio.sleep(0)
    b.close()
    assert await waiter == "ended"
    assert idle == ["r"] and not hub.has_run("r")


async def test_get_times_out_with_none() -> None:
    hub = FanoutHub()
    sub = hub.add("r")
    assert await sub.get(0.01) is None
    hub.deliver("r", StreamGap("r"))
    assert await sub.get(0.01) == StreamGap("r")


def test_a_burst_is_appended_without_copies() -> None:
    hub = FanoutHub(max_queue=1000)
    subs = [hub.add("r") for _ in range(1000)]
    event = RunEventMessage("r", 1, "content", {"x": 1})
    assert hub.deliver("r", event) == 1000
    assert all(sub._items[0] is event for sub in subs)  # the same object, no per-subscriber work
