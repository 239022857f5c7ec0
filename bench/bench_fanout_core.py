"""Fan-out core: N in-process subscribers on one run, M events published at once through each bus.

Prints one JSON object per bus: {bus, subscribers, events, seconds, deliveries_per_second, lost}.
The Redis bus is measured when Redis answers (RUNPLANE_REDIS_URL, default redis://127.0.0.1:6379/0).

    python bench/bench_fanout_core.py [--subscribers 1000] [--events 100] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
import uuid
from typing import Any

from runplane.events import EventBus, InMemoryEventBus, RedisEventBus, RunEventMessage, SlowConsumer, Subscription


async def read(sub: Subscription, events: int, counts: list[int], slot: int) -> None:
    try:
        async for item in sub:
            if isinstance(item, RunEventMessage):
                counts[slot] += 1
                if counts[slot] == events:
                    return
    except SlowConsumer:
        return  # counted as lost


async def measure(name: str, bus: EventBus, subscribers: int, events: int) -> dict[str, Any]:
    run_id = f"bench-{uuid.uuid4().hex}"
    subs = [await bus.subscribe(run_id) for _ in range(subscribers)]
    counts = [0] * subscribers
    readers = [asyncio.create_task(read(sub, events, counts, i)) for i, sub in enumerate(subs)]
    await asyncio.sleep(0.05)  # every reader parked on its queue
    batch = [RunEventMessage(run_id, seq, "content", {"content": "x" * 200}) for seq in range(1, events + 1)]
    started = time.perf_counter()
    for event in batch:  # "at once": no yielding to readers between publishes
        await bus.publish(event)
    _, pending = await asyncio.wait(readers, timeout=60)
    seconds = time.perf_counter() - started
    for task in pending:
        task.cancel()
    for sub in subs:
        sub.close()
    delivered = sum(counts)
    return {
        "bus": name,
        "subscribers": subscribers,
        "events": events,
        "seconds": round(seconds, 4),
        "deliveries_per_second": round(delivered / seconds),
        "lost": subscribers * events - delivered,
    }


async def redis_bus_or_none(url: str, max_queue: int) -> RedisEventBus | None:
    bus = RedisEventBus(url, max_queue=max_queue, client_name="runplane-bench")
    await bus.start()
    if await bus.wait_connected(2):
        return bus
    await bus.stop()
    return None


async def main(args: argparse.Namespace) -> None:
    max_queue = max(1000, args.events + 10)
    memory = InMemoryEventBus(max_queue=max_queue)
    await memory.start()
    print(json.dumps(await measure("memory", memory, args.subscribers, args.events)))
    await memory.stop()
    redis_bus = await redis_bus_or_none(args.redis_url, max_queue)
    if redis_bus is None:
        print(json.dumps({"bus": "redis", "skipped": f"Redis not reachable at {args.redis_url}"}))
        return
    print(json.dumps(await measure("redis", redis_bus, args.subscribers, args.events)))
    await redis_bus.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--redis-url", default=os.environ.get("RUNPLANE_REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (as uvicorn does)")
    options = parser.parse_args()
    if options.uvloop:
        import uvloop

        uvloop.install()
    asyncio.run(main(options))
