"""Fan-out latency: N WebSocket (or SSE) subscribers on one run, R events/s for S seconds; publish-to-receive
p50/p99 and lost events. Each event carries its publish time (`payload.t`). Prints JSON.

    python bench/bench_fanout_latency.py [--subscribers 1000] [--rate 20] [--seconds 30]
                                         [--client node|python] [--transport websocket|sse] [--pin] [--before-tree DIR]

With --before-tree the same load runs first against a server from that source tree, then against this
one, in the same run. --client node: all subscribers in one Node.js process (bench/js/fanout_load.mjs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import (
    Receiver,
    held_run,
    lost_and_repeated,
    node_load,
    percentile,
    running_server,
    sse_subscriber,
    ws_subscriber,
)

CONNECT_BATCH = 100


async def paced(run: Any, rate: float, seconds: float) -> int:
    interval, count = 1.0 / rate, int(rate * seconds)
    began = time.perf_counter()
    for index in range(count):  # paced against the start, so a slow publish does not slow the rate
        await asyncio.sleep(max(0.0, began + index * interval - time.perf_counter()))
        await run.publish("content", {"content": f"tick {index}", "t": time.time()})
    await run.finish()
    return count


async def measure(args: argparse.Namespace, tree: str | None) -> dict[str, Any]:
    async with running_server(tree=tree, cpus="0" if args.pin else None) as server, held_run(server) as run:
        if args.client == "node":
            async with node_load(server, run, args.transport, args.subscribers, cpus="1" if args.pin else None) as load:
                await run.publish("status", {"status": "running"})
                await load.ready()
                count = await paced(run, args.rate, args.seconds)
                summary = await load.finish(run.published + 1)
            figures = {k: summary[k] for k in ("p50_ms", "p99_ms", "max_ms", "lost", "repeated")}
            figures["deliveries"] = summary["latency_samples"]
            figures = {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}
        else:
            figures, count = await _python_clients(server, run, args)
    return {"events": count, **figures}


async def _python_clients(server: Any, run: Any, args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    subscribe = ws_subscriber if args.transport == "websocket" else sse_subscriber
    receivers = [Receiver() for _ in range(args.subscribers)]
    tasks = []
    for start in range(0, args.subscribers, CONNECT_BATCH):
        tasks += [asyncio.create_task(subscribe(server, run, r)) for r in receivers[start : start + CONNECT_BATCH]]
        await asyncio.sleep(0.05)
    await run.publish("status", {"status": "running"})
    await asyncio.wait_for(asyncio.gather(*(r.ready.wait() for r in receivers)), 120)
    for r in receivers:
        r.latencies.clear()
    count = await paced(run, args.rate, args.seconds)
    await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in receivers)), 300)
    await asyncio.gather(*tasks, return_exceptions=True)
    latencies = [value * 1000 for r in receivers for value in r.latencies]
    lost, repeated = lost_and_repeated(receivers, list(range(1, run.published + 2)))
    return {
        "deliveries": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "max_ms": round(max(latencies), 2) if latencies else None,
        "lost": lost,
        "repeated": repeated,
    }, count


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--client", choices=["node", "python"], default="node" if shutil.which("node") else "python")
    parser.add_argument("--transport", choices=["websocket", "sse"], default="websocket")
    parser.add_argument("--pin", action="store_true", help="taskset: server on CPU 0, client on CPU 1")
    parser.add_argument("--before-tree", help="first run the server from this source tree (the 'before')")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "fanout_latency",
        "transport": args.transport,
        "subscribers": args.subscribers,
        "events_per_second": args.rate,
        "seconds": args.seconds,
        "client": f"{args.client} ({'bench/js/fanout_load.mjs' if args.client == 'node' else 'bench/fanout_support.py'})",
        "pinned": "server taskset -c 0, client taskset -c 1" if args.pin else None,
    }
    if args.before_tree:
        report["before"] = await measure(args, args.before_tree)
    report["after" if args.before_tree else "result"] = await measure(args, None)
    report["note"] = (
        "publish time includes the event log write; the bench process plays the worker and publishes on Redis"
    )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
