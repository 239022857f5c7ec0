"""Redis outages mid-stream: the follower still ends with every event exactly once.

Two outages are simulated: our pub/sub connection killed on the shared Redis (CLIENT KILL TYPE
pubsub, narrowed by ID to our connection so other suites using that server are not disturbed), and
a private redis-server that is really killed and restarted on the same port.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from runplane.events import RedisEventBus, RunEventMessage, StreamGap, follow_run
from tests.events.helpers import EventLog, RedisProcess, collect


@pytest.fixture
async def buses(redis_url: str) -> AsyncIterator[tuple[RedisEventBus, RedisEventBus]]:
    """A reader process's bus and a separate executor process's bus."""
    tag = uuid.uuid4().hex[:10]
    # Backoff floor 0.2 s: events published right after the kill really are missed live.
    reader = RedisEventBus(redis_url, client_name=f"rp-reader-{tag}", backoff=(0.2, 1.0))
    writer = RedisEventBus(redis_url, client_name=f"rp-writer-{tag}")
    for bus in (reader, writer):
        await bus.start()
        assert await bus.wait_connected(5)
    yield reader, writer
    for bus in (reader, writer):
        await bus.stop()


async def kill_pubsub_connection(url: str, client_name: str) -> None:
    admin = aioredis.Redis.from_url(url)
    try:
        clients = await admin.client_list(_type="pubsub")
        (ours,) = [c for c in clients if c.get("name") == client_name]
        killed = await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub", "ID", ours["id"])
        assert killed == 1
    finally:
        await admin.aclose()


async def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_killed_pubsub_connection_sends_gap_marker(
    buses: tuple[RedisEventBus, RedisEventBus], event_log: EventLog
) -> None:
    reader, writer = buses
    sub = await reader.subscribe(event_log.run_id)
    await kill_pubsub_connection(reader._url, reader.client_name)
    item = await asyncio.wait_for(sub.get(), 10)
    assert item == StreamGap(event_log.run_id)
    await event_log.emit(writer)  # and live delivery resumed on the new connection
    item = await asyncio.wait_for(sub.get(), 5)
    assert isinstance(item, RunEventMessage) and item.sequence == 1
    assert reader.stats.connects == 2 and reader.stats.disconnects == 1
    sub.close()


async def test_follower_survives_client_kill_mid_stream(
    buses: tuple[RedisEventBus, RedisEventBus], event_log: EventLog
) -> None:
    reader, writer = buses
    events = follow_run(event_log.run_id, 0, event_log.replay, reader, is_finished=event_log.is_finished)
    task = asyncio.create_task(collect(events, timeout=20))
    await event_log.replay_started.wait()
    for _ in range(10):
        await event_log.emit(writer)
    await asyncio.sleep(0.1)
    await kill_pubsub_connection(reader._url, reader.client_name)
    for _ in range(10):
        await event_log.emit(writer)  # 11..20 published while our subscription is gone
    await wait_for(lambda: reader.connected and reader.stats.connects >= 2)
    for _ in range(10):
        await event_log.emit(writer)
    await event_log.finish(writer)
    assert await task == list(range(1, 32))
    assert reader.stats.gaps_signalled >= 1
    assert event_log.replay_calls >= 2  # the missed events came from the log


@pytest.mark.parametrize("publish_backlog", [0, 10_000], ids=["log-replay-only", "with-republish"])
async def test_follower_survives_real_redis_restart(
    redis_process: RedisProcess, event_log: EventLog, publish_backlog: int
) -> None:
    opts = dict(backoff=(0.05, 0.5), io_timeout=0.5, publish_retry_after=0.2)
    reader = RedisEventBus(redis_process.url, client_name="rp-reader", **opts)  # type: ignore[arg-type]
    writer = RedisEventBus(redis_process.url, client_name="rp-writer", publish_backlog=publish_backlog, **opts)  # type: ignore[arg-type]
    for bus in (reader, writer):
        await bus.start()
        assert await bus.wait_connected(5)
    try:
        events = follow_run(event_log.run_id, 0, event_log.replay, reader, is_finished=event_log.is_finished)
        task = asyncio.create_task(collect(events, timeout=30))
        await event_log.replay_started.wait()
        for _ in range(20):
            await event_log.emit(writer)
        await asyncio.sleep(0.2)

        redis_process.kill()
        started = time.monotonic()
        for _ in range(20):
            await event_log.emit(writer)  # 21..40: must neither raise nor stall the executor
        assert time.monotonic() - started < 2.0
        assert writer.stats.publish_failures >= 1
        await wait_for(lambda: not reader.connected)

        redis_process.start()  # same port, empty server: no subscriptions survive
        assert await reader.wait_connected(10) and await writer.wait_connected(10)
        for _ in range(20):
            await event_log.emit(writer)
        await event_log.finish(writer)

        assert await task == list(range(1, 62))
        assert reader.stats.disconnects >= 1 and reader.stats.gaps_signalled >= 1
        if publish_backlog == 0:
            assert writer.stats.backlog_dropped >= 20  # so 21..40 can only have come from the log
        else:
            await wait_for(lambda: not writer._backlog)
            assert writer.stats.backlog_flushed >= 1 and writer.stats.backlog_dropped == 0
    finally:
        for bus in (reader, writer):
            await bus.stop()
