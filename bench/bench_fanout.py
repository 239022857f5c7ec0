"""Fan-out burst: N subscribers on one run, E events published at once; deliveries/s and lost events.

Runs three servers one after the other in the same run, so the figures compare side by side:
WebSocket with the shared fan-out path, WebSocket through plain Strawberry execution (the baseline),
and SSE. Prints one JSON document.

    python bench/bench_fanout.py [--subscribers 1000] [--events 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import (  # noqa: E402
    Receiver,
    held_run,
    lost_and_repeated,
    running_server,
    sse_subscriber,
    ws_subscriber,
)

CONNECT_BATCH = 100


async def burst(transport: str, subscribers: int, events: int, **env: str) -> dict[str, object]:
    async with running_server(**env) as server, held_run(server) as run:
        subscribe = ws_subscriber if transport == "websocket" else sse_subscriber
        receivers = [Receiver() for _ in range(subscribers)]
        tasks = []
        for start in range(0, subscribers, CONNECT_BATCH):  # connect in batches: a SYN flood is not the test
            tasks += [asyncio.create_task(subscribe(server, run, r)) for r in receivers[start : start + CONNECT_BATCH]]
            await asyncio.sleep(0.05)
        await run.publish("status", {"status": "running"})  # warm-up: every subscriber is live once it has this
        await asyncio.wait_for(asyncio.gather(*(r.ready.wait() for r in receivers)), 120)
        # The events are in the log first (as the executor writes them); the burst is their publication.
        logged = [await run.append_only("content", {"content": f"chunk {index}"}) for index in range(events)]
        started = time.perf_counter()
        for event in logged:
            await run.bus.publish(event)
        run.published += len(logged)
        await run.finish()
        await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in receivers)), 300)
        elapsed = time.perf_counter() - started
        await asyncio.gather(*tasks, return_exceptions=True)
        expected = list(range(1, run.published + 2))  # + the terminal status event
        lost, repeated = lost_and_repeated(receivers, expected)
        deliveries = subscribers * (events + 1)
        return {
            "transport": transport, "subscribers": subscribers, "events": events, "seconds": round(elapsed, 3),
            "deliveries": deliveries, "deliveries_per_second": round(deliveries / elapsed), "lost": lost, "repeated": repeated,
        }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    args = parser.parse_args()
    shared = await burst("websocket", args.subscribers, args.events, RUNPLANE_GRAPHQL_SHARED_FANOUT="true")
    plain = await burst("websocket", args.subscribers, args.events, RUNPLANE_GRAPHQL_SHARED_FANOUT="false")
    sse = await burst("sse", args.subscribers, args.events)
    ratio = shared["deliveries_per_second"] / plain["deliveries_per_second"]  # type: ignore[operator]
    print(json.dumps({
        "benchmark": "fanout_burst",
        "websocket_shared": shared, "websocket_plain_strawberry": plain, "sse": sse,
        "shared_vs_plain_ratio": round(ratio, 2),
    }, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
