"""Fan-out burst: N subscribers on one run, E events published at once; deliveries/s and lost events.

Runs several servers one after the other in the same run, so the figures compare side by side:
WebSocket (runEvents through the shared fan-out path) and SSE; with --before-tree, the same two on a
server run from that source tree (e.g. `git archive HEAD | tar -x -C /tmp/before`); with --plain,
WebSocket through plain Strawberry execution. Prints one JSON document.

    python bench/bench_fanout.py [--subscribers 1000] [--events 100] [--client node|python]
                                 [--pin] [--before-tree DIR] [--plain] [--repeat 1]

--client node (default when `node` is installed) runs every subscriber in one Node.js process
(bench/js/fanout_load.mjs) so the load client does not compete with the server for a whole core of
Python; --pin puts the server on CPU 0 and the client on CPU 1 (`taskset`).
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
    running_server,
    sse_subscriber,
    ws_subscriber,
)

CONNECT_BATCH = 100
SERVER_CPUS, CLIENT_CPUS = "0", "1"


async def burst(
    transport: str, subscribers: int, events: int, *, client: str, pin: bool, tree: str | None = None, **env: str
) -> dict[str, object]:
    async with running_server(tree=tree, cpus=SERVER_CPUS if pin else None, **env) as server, held_run(server) as run:
        if client == "node":
            async with node_load(server, run, transport, subscribers, cpus=CLIENT_CPUS if pin else None) as load:
                await run.publish("status", {"status": "running"})  # warm-up: every subscriber is live once it has this
                await load.ready()
                started, _logged = await _publish_burst(run, events)
                summary = await load.finish(run.published + 1)
            elapsed = summary["last_receive"] - started
            lost, repeated, errors = summary["lost"], summary["repeated"], summary["errors"]
        else:
            elapsed, lost, repeated = await _python_clients(server, run, transport, subscribers, events)
            errors = {}
        deliveries = subscribers * (events + 1)
        return {
            "transport": transport,
            "subscribers": subscribers,
            "events": events,
            "seconds": round(elapsed, 3),
            "deliveries": deliveries,
            "deliveries_per_second": round(deliveries / elapsed),
            "lost": lost,
            "repeated": repeated,
            **({"client_errors": errors} if errors else {}),
        }


async def _publish_burst(run: Any, events: int) -> tuple[float, int]:
    # The events are in the log first (as the executor writes them); the burst is their publication.
    logged = [await run.append_only("content", {"content": f"chunk {index}"}) for index in range(events)]
    started = time.time()
    for event in logged:
        await run.bus.publish(event)
    run.published += len(logged)
    await run.finish()
    return started, len(logged)


async def _python_clients(
    server: Any, run: Any, transport: str, subscribers: int, events: int
) -> tuple[float, int, int]:
    subscribe = ws_subscriber if transport == "websocket" else sse_subscriber
    receivers = [Receiver() for _ in range(subscribers)]
    tasks = []
    for start in range(0, subscribers, CONNECT_BATCH):  # connect in batches: a SYN flood is not the test
        tasks += [asyncio.create_task(subscribe(server, run, r)) for r in receivers[start : start + CONNECT_BATCH]]
        await asyncio.sleep(0.05)
    await run.publish("status", {"status": "running"})
    await asyncio.wait_for(asyncio.gather(*(r.ready.wait() for r in receivers)), 120)
    started, _ = await _publish_burst(run, events)
    await asyncio.wait_for(asyncio.gather(*(r.done.wait() for r in receivers)), 300)
    elapsed = time.time() - started
    await asyncio.gather(*tasks, return_exceptions=True)
    lost, repeated = lost_and_repeated(receivers, list(range(1, run.published + 2)))  # + the terminal status event
    return elapsed, lost, repeated


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--client", choices=["node", "python"], default="node" if shutil.which("node") else "python")
    parser.add_argument("--pin", action="store_true", help="taskset: server on CPU 0, client on CPU 1")
    parser.add_argument("--before-tree", help="also run the server from this source tree (the 'before')")
    parser.add_argument("--plain", action="store_true", help="also run WebSocket through plain Strawberry")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", choices=["websocket", "sse"], help="one transport only")
    args = parser.parse_args()
    common = {"client": args.client, "pin": args.pin}
    variants: list[tuple[str, str, dict[str, Any]]] = []
    for transport in ["websocket", "sse"]:
        if args.only and transport != args.only:
            continue
        if args.before_tree:
            variants.append(
                (f"{transport}_before", transport, {"tree": args.before_tree, "RUNPLANE_GRAPHQL_SHARED_FANOUT": "true"})
            )
        variants.append(
            (
                f"{transport}_after" if args.before_tree else transport,
                transport,
                {"RUNPLANE_GRAPHQL_SHARED_FANOUT": "true"},
            )
        )
    if args.plain:
        variants.append(("websocket_plain_strawberry", "websocket", {"RUNPLANE_GRAPHQL_SHARED_FANOUT": "false"}))
    results: dict[str, list[dict[str, object]]] = {name: [] for name, _, _ in variants}
    for _ in range(args.repeat):  # interleaved, so drifting machine load hits every variant alike
        for name, transport, env in variants:
            results[name].append(await burst(transport, args.subscribers, args.events, **common, **env))
    report: dict[str, object] = {
        "benchmark": "fanout_burst",
        "client": f"{args.client} ({'bench/js/fanout_load.mjs' if args.client == 'node' else 'bench/fanout_support.py'})",
        "pinned": f"server taskset -c {SERVER_CPUS}, client taskset -c {CLIENT_CPUS}" if args.pin else None,
        **{name: runs[0] if args.repeat == 1 else runs for name, runs in results.items()},
    }
    if args.before_tree:
        for transport in ["websocket", "sse"]:
            before, after = results.get(f"{transport}_before"), results.get(f"{transport}_after")
            if before and after:
                report[f"{transport}_after_vs_before"] = [
                    round(float(a["deliveries_per_second"]) / float(b["deliveries_per_second"]), 2)
                    for a, b in zip(after, before, strict=False)
                ]  # type: ignore[arg-type]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
