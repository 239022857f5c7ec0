"""Fan-out latency: N WebSocket subscribers on one run, R events/s for S seconds; publish-to-receive
p50/p99 and lost events. Each event carries its publish time (`payload.t`). Prints JSON.

    python bench/bench_fanout_latency.py [--subscribers 1000] [--rate 20] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import Receiver, held_run, lost_and_repeated, percentile, running_server, ws_subscriber  # noqa: E402

CONNECT_BATCH = 100


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    async with running_server() as server, held_run(server) as run:
        receivers = [Receiver() for _ in range(args.subscribers)]
        tasks = []
        for start in range(0, args.subscribers, CONNECT_BATCH):
            tasks += [asyncio.create_task(ws_subscriber(server, run, r)) for r in receivers[start : start + CONNECT_BATCH]]
            await asyncio.sleep(0.05)
        await run.publish("status", {"status": "running"})
        await asyncio.wait_for(asyncio.gather(*(r.ready.wait() for r in receivers)), 120)
        for r in receivers:
            r.latencies.clear()
        interval, count = 1.0 / args.rate, int(args.rate * args.seconds)
        began = time.perf_counter()
        for index in range(count):  # paced against the start, so a slow publish does not slow the rate
            await asyncio.sleep(max(0.0, began + index * interval - time.perf_counter()))
            await run.publish("content", {"content": f"tick {index}", "t": time.time()})
        await run.finish()
        await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in receivers)), 300)
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [value * 1000 for r in receivers for value in r.latencies]
    lost, repeated = lost_and_repeated(receivers, list(range(1, run.published + 2)))
    print(json.dumps({
        "benchmark": "fanout_latency", "subscribers": args.subscribers, "events_per_second": args.rate,
        "seconds": args.seconds, "events": count, "deliveries": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 2), "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2) if latencies else None, "lost": lost, "repeated": repeated,
        "note": "publish time includes the event log write; the bench process plays the worker and publishes on Redis",
    }, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
