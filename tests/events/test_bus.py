"""Both buses: publish/subscribe, 1,000-subscriber fan-out, slow consumers; Redis specifics."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from runplane.events import (
    ControlMessage,
    ControlSignal,
    EventBus,
    InMemoryEventBus,
    RedisEventBus,
    RunEventMessage,
    SlowConsumer,
    Subscription,
    create_event_bus,
    events_channel,
)
from tests.events.helpers import BusFactory, EventLog, free_port


async def take_events(sub: Subscription, count: int) -> list[int]:
    seqs: list[int] = []
    async for item in sub:
        if isinstance(item, RunEventMessage):
            seqs.append(item.sequence)
            if len(seqs) == count:
                break
    return seqs


async def test_publish_subscribe_events_and_control(bus: EventBus, event_log: EventLog) -> None:
    sub = await bus.subscribe(event_log.run_id)
    for _ in range(3):
        await event_log.emit(bus, "content", content="hi")
    await bus.publish_control(event_log.run_id, ControlSignal.END_STREAM, {"reason": "done"})
    items = [await asyncio.wait_for(sub.get(), 5) for _ in range(4)]
    assert [i.sequence for i in items[:3] if isinstance(i, RunEventMessage)] == [1, 2, 3]
    assert items[0] == event_log.events[0]
    assert items[3] == ControlMessage(event_log.run_id, ControlSignal.END_STREAM, {"reason": "done"})
    sub.close()


async def test_subscribers_only_get_their_run(bus: EventBus, event_log: EventLog) -> None:
    other = EventLog(event_log.run_id + "-other")
    sub = await bus.subscribe(event_log.run_id)
    await other.emit(bus)
    await event_log.emit(bus)
    item = await asyncio.wait_for(sub.get(), 5)
    assert isinstance(item, RunEventMessage) and item.run_id == event_log.run_id
    assert await sub.get(0.1) is None
    sub.close()


async def test_thousand_subscribers_hundred_events_no_loss(bus: EventBus, event_log: EventLog) -> None:
    subs = [await bus.subscribe(event_log.run_id) for _ in range(1000)]
    readers = [asyncio.create_task(take_events(sub, 100)) for sub in subs]
    for _ in range(100):
        await event_log.emit(bus, "content", content="x" * 100)
    results = await asyncio.wait_for(asyncio.gather(*readers), 30)
    assert all(seqs == list(range(1, 101)) for seqs in results)
    for sub in subs:
        sub.close()


async def test_slow_subscriber_cut_off_others_unaffected(bus_factory: BusFactory, event_log: EventLog) -> None:
    bus = await bus_factory(max_queue=10)
    slow = await bus.subscribe(event_log.run_id)
    fast = [await bus.subscribe(event_log.run_id) for _ in range(20)]
    readers = [asyncio.create_task(take_events(sub, 100)) for sub in fast]
    for _ in range(100):
        await event_log.emit(bus)
        await asyncio.sleep(0)  # readers keep pace; `slow` never reads
    results = await asyncio.wait_for(asyncio.gather(*readers), 10)
    assert all(seqs == list(range(1, 101)) for seqs in results)
    assert slow.cut_off
    try:
        await slow.get()
        raise AssertionError("a cut-off subscriber must raise SlowConsumer")
    except SlowConsumer:
        pass


async def test_stop_ends_subscriptions(bus_factory: BusFactory, run_id: str) -> None:
    bus = await bus_factory()
    sub = await bus.subscribe(run_id)
    await bus.stop()
    assert [item async for item in sub] == []


# -- Redis only -------------------------------------------------------------------------------


async def _pubsub_clients(url: str, name: str) -> list[dict[str, str]]:
    client = aioredis.Redis.from_url(url)
    try:
        clients = await client.client_list(_type="pubsub")
    finally:
        await client.aclose()
    return [c for c in clients if c.get("name") == name]


async def _numsub(url: str, channel: str) -> int:
    client = aioredis.Redis.from_url(url)
    try:
        return int((await client.pubsub_numsub(channel))[0][1])
    finally:
        await client.aclose()


async def test_one_redis_connection_for_all_runs_and_refcounted_channels(redis_url: str, run_id: str) -> None:
    bus = RedisEventBus(redis_url, client_name=f"rp-test-{run_id[-10:]}")
    await bus.start()
    try:
        assert await bus.wait_connected(5)
        runs = [f"{run_id}-{i}" for i in range(50)]
        subs = [await bus.subscribe(r) for r in runs for _ in range(3)]
        assert len(await _pubsub_clients(redis_url, bus.client_name)) == 1
        assert await _numsub(redis_url, events_channel(runs[0])) == 1  # 3 local subscribers, 1 SUBSCRIBE
        for sub in subs[:3]:  # all subscribers of runs[0]
            sub.close()
        for _ in range(50):
            if await _numsub(redis_url, events_channel(runs[0])) == 0:
                break
            await asyncio.sleep(0.02)
        assert await _numsub(redis_url, events_channel(runs[0])) == 0
        assert await _numsub(redis_url, events_channel(runs[1])) == 1
        again = await bus.subscribe(runs[0])  # subscribing after the unsubscribe works
        assert await _numsub(redis_url, events_channel(runs[0])) == 1
        again.close()
    finally:
        await bus.stop()


async def test_publish_to_unreachable_redis_neither_raises_nor_stalls(run_id: str) -> None:
    bus = RedisEventBus(f"redis://127.0.0.1:{free_port()}/0", io_timeout=0.5)
    await bus.start()
    try:
        log = EventLog(run_id)
        started = time.monotonic()
        for _ in range(200):
            await log.emit(bus)
        await bus.publish_control(run_id, ControlSignal.END_STREAM)
        assert time.monotonic() - started < 2.0
        assert bus.stats.publish_failures >= 1 and bus.stats.published == 0
        assert len(bus._backlog) == 201  # kept, in order, for when Redis answers again
    finally:
        await bus.stop()


def test_factory_picks_redis_only_when_configured(redis_url: str) -> None:
    assert isinstance(create_event_bus(None), InMemoryEventBus)
    assert isinstance(create_event_bus(redis_url, max_queue=5), RedisEventBus)
