"""follow_run against both buses: replay + live, exactly once, gaps, ends, heartbeats."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator

import pytest

from runplane.events import (
    ControlSignal,
    EventBus,
    RunEventMessage,
    StreamGap,
    follow_run,
    follow_run_heartbeat,
)
from tests.events.helpers import BusFactory, EventLog, collect


def follow(bus: EventBus, log: EventLog, after: int = 0, poll_interval: float = 5.0) -> asyncio.Task[list[int]]:
    events = follow_run(log.run_id, after, log.replay, bus, is_finished=log.is_finished, poll_interval=poll_interval)
    return asyncio.create_task(collect(events))


async def test_replay_and_live_overlap_give_each_seq_once(bus: EventBus, event_log: EventLog) -> None:
    for _ in range(50):
        event_log.append()  # history written before anyone listened
    event_log.replay_delay = 0.05  # a slow log read: live events pile up meanwhile
    task = follow(bus, event_log)
    await event_log.replay_started.wait()
    for _ in range(30):
        await event_log.emit(bus)  # 51..80: in the log read AND queued live
    for event in event_log.events[35:65]:
        await bus.publish(event)  # duplicates, as a republish after an outage would send
    await asyncio.sleep(0.1)
    for _ in range(19):
        await event_log.emit(bus)
    await event_log.finish(bus)
    assert await task == list(range(1, 101))


async def test_live_gap_triggers_log_reread(bus: EventBus, event_log: EventLog) -> None:
    task = follow(bus, event_log)
    await event_log.replay_started.wait()
    for _ in range(3):
        await event_log.emit(bus)
    for _ in range(6):
        event_log.append()  # 4..9 never published
    await event_log.emit(bus)  # 10 arrives live: seq jump
    await asyncio.sleep(0.2)
    reads_after_gap = event_log.replay_calls
    await event_log.finish(bus)
    assert await task == list(range(1, 12))
    assert reads_after_gap >= 2


async def test_stream_gap_marker_triggers_log_reread(bus: EventBus, event_log: EventLog) -> None:
    task = follow(bus, event_log)
    await event_log.replay_started.wait()
    for _ in range(5):
        event_log.append()  # published while "Redis was down"
    bus.hub.deliver(event_log.run_id, StreamGap(event_log.run_id))
    await asyncio.sleep(0.2)
    assert event_log.replay_calls >= 2
    await event_log.finish(bus)
    assert await task == list(range(1, 7))


async def test_late_subscriber_gets_everything_then_ends(bus: EventBus, event_log: EventLog) -> None:
    for _ in range(20):
        event_log.append()
    event_log.append("status", status="completed")
    event_log.finished = True
    assert await collect(
        follow_run(event_log.run_id, 0, event_log.replay, bus, is_finished=event_log.is_finished), timeout=2
    ) == list(range(1, 22))
    assert await collect(
        follow_run(event_log.run_id, 15, event_log.replay, bus, is_finished=event_log.is_finished), timeout=2
    ) == list(range(16, 22))


@pytest.mark.parametrize("page_size", [None, 7])
async def test_paged_replay_is_read_to_the_end(bus: EventBus, event_log: EventLog, page_size: int | None) -> None:
    async def paged(after: int) -> list[RunEventMessage]:
        page: list[RunEventMessage] = await event_log.replay(after)
        return page[:7]

    def follower() -> AsyncGenerator[RunEventMessage, None]:
        return follow_run(event_log.run_id, 0, paged, bus, is_finished=event_log.is_finished, page_size=page_size)

    for _ in range(50):
        event_log.append()
    task = asyncio.create_task(collect(follower()))
    await event_log.replay_started.wait()
    for _ in range(30):
        event_log.append()  # unpublished: only END_STREAM's final log read can find them
    await bus.publish_control(event_log.run_id, ControlSignal.END_STREAM)
    assert await task == list(range(1, 81))
    event_log.finished = True
    assert await collect(follower()) == list(range(1, 81))


async def test_finished_run_without_terminal_event_still_ends(bus: EventBus, event_log: EventLog) -> None:
    for _ in range(5):
        event_log.append()
    event_log.finished = True
    assert await collect(
        follow_run(event_log.run_id, 0, event_log.replay, bus, is_finished=event_log.is_finished), timeout=2
    ) == [1, 2, 3, 4, 5]


async def test_end_stream_drains_the_log_first(bus: EventBus, event_log: EventLog) -> None:
    task = follow(bus, event_log)
    await event_log.replay_started.wait()
    await event_log.emit(bus)
    for _ in range(4):
        event_log.append()  # written but their publish was lost
    await bus.publish_control(event_log.run_id, ControlSignal.END_STREAM)
    assert await task == [1, 2, 3, 4, 5]


async def test_error_signal_ends_the_stream(bus: EventBus, event_log: EventLog) -> None:
    task = follow(bus, event_log)
    await event_log.replay_started.wait()
    await event_log.emit(bus, "status", status="running")
    await bus.publish_control(event_log.run_id, ControlSignal.STOP)  # for the executor: ignored here
    await event_log.emit(bus)
    await bus.publish_control(event_log.run_id, ControlSignal.ERROR, {"message": "model failed"})
    assert await task == [1, 2]


async def test_lost_end_signal_is_covered_by_is_finished_polling(bus: EventBus, event_log: EventLog) -> None:
    task = follow(bus, event_log, poll_interval=0.05)
    await event_log.replay_started.wait()
    await event_log.emit(bus)
    event_log.append()
    event_log.finished = True  # END_STREAM never published
    assert await asyncio.wait_for(task, 3) == [1, 2]


async def test_slow_follower_is_cut_off_and_recovers_from_the_log(bus_factory: BusFactory, event_log: EventLog) -> None:
    bus = await bus_factory(max_queue=5)

    async def slow_reader() -> list[int]:
        seqs = []
        async for event in follow_run(event_log.run_id, 0, event_log.replay, bus, is_finished=event_log.is_finished):
            seqs.append(event.sequence)
            await asyncio.sleep(0.002)
        return seqs

    task = asyncio.create_task(slow_reader())
    await event_log.replay_started.wait()
    for _ in range(100):
        await event_log.emit(bus)
    await event_log.finish(bus)
    assert await asyncio.wait_for(task, 10) == list(range(1, 102))
    assert bus.hub.cut_off_count >= 1


async def test_heartbeat_variant_yields_none_on_silence(bus: EventBus, event_log: EventLog) -> None:
    items: list[int | None] = []

    async def reader() -> None:
        async for item in follow_run_heartbeat(
            event_log.run_id, 0, event_log.replay, bus, is_finished=event_log.is_finished, heartbeat=0.05
        ):
            items.append(None if item is None else item.sequence)

    task = asyncio.create_task(reader())
    await asyncio.sleep(0.2)
    await event_log.emit(bus)
    await event_log.finish(bus)
    await asyncio.wait_for(task, 3)
    assert items[0] is None and [i for i in items if i is not None] == [1, 2]


async def test_many_followers_with_random_cursors_and_timing(bus: EventBus, event_log: EventLog) -> None:
    for _ in range(30):
        event_log.append()

    async def one_follower(after: int) -> tuple[int, list[int]]:
        await asyncio.sleep(random.uniform(0, 0.05))  # join at different moments of the run
        events = follow_run(event_log.run_id, after, event_log.replay, bus, is_finished=event_log.is_finished)
        return after, await collect(events, timeout=20)

    followers = [asyncio.create_task(one_follower(random.randint(0, 30))) for _ in range(200)]
    for _ in range(60):
        await event_log.emit(bus)
        await asyncio.sleep(0.001)
    await event_log.finish(bus)
    for after, seqs in await asyncio.gather(*followers):
        assert seqs == list(range(after + 1, 92))


async def test_events_are_the_logged_objects(bus: EventBus, event_log: EventLog) -> None:
    task = asyncio.create_task(_first_event(bus, event_log))
    await event_log.replay_started.wait()
    sent = await event_log.emit(bus, "tool_call", tool="shell", arguments={"cmd": "ls"})
    got = await asyncio.wait_for(task, 5)
    assert got == sent and got.payload == {"tool": "shell", "arguments": {"cmd": "ls"}}


async def _first_event(bus: EventBus, log: EventLog) -> RunEventMessage:
    async for event in follow_run(log.run_id, 0, log.replay, bus, is_finished=log.is_finished):
        return event
    raise AssertionError("stream ended without events")
