"""Soak: thousands of live runEvents subscribers (WebSocket, graphql-transport-ws) held for minutes against ONE
`runplane serve` process, with a steady trickle of events, while the server's RSS is sampled. Prints JSON.

The load client is Node (bench/soak_client.mjs, the `ws` package): one Python process with 2,000 websockets
would measure itself. The bench plays the worker of one run (fanout_support.held_run): each event is written to
the log and published on Redis, as the executor does. At the end the run finishes, every subscription completes,
and each subscriber's sequence numbers are checked: lost (gaps, or short of the last event) must be 0.

"Memory flat": the least-squares slope of RSS over the second half of the run (after warm-up) is within
FLAT_MB_PER_MIN. Warm-up is the first `--warmup` seconds after every subscriber is live.

    python bench/bench_soak.py [--minutes 10] [--subscribers 2000] [--rate 3] [--sample 5] [--postgres]

BENCH_SOAK_TRACEMALLOC=1 starts the server with tracemalloc (PYTHONTRACEMALLOC) for leak hunting (slower).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import held_run, running_server

FLAT_MB_PER_MIN = 0.5  # |slope| at or under this, over the second half, counts as flat
CLIENT = Path(__file__).resolve().parent / "soak_client.mjs"


def raise_fd_limit(wanted: int) -> int:
    """2,000 sockets on each side (server and client inherit this soft limit) plus files, pipes, Redis."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def process_sample(pid: int) -> dict[str, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_mb": int(fields["VmRSS"].split()[0]) / 1024,
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return cov / var * 60 if var else float("nan")


class Client:
    """The Node load client and the JSON lines it prints."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self.progress: dict[str, Any] = {}
        self.summary: dict[str, Any] | None = None
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            message = json.loads(line)
            if "ready" in message:
                self.ready.set()
            elif "progress" in message:
                self.progress = message["progress"]
            elif "summary" in message:
                self.summary = message["summary"]
                self.done.set()
        self.done.set()


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    env: dict[str, str] = {}
    if args.postgres:
        from tests.support import create_postgres_database

        env["RUNPLANE_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{await create_postgres_database()}"
    if os.environ.get("BENCH_SOAK_TRACEMALLOC"):
        env["PYTHONTRACEMALLOC"] = "1"
    fd_limit = raise_fd_limit(args.subscribers * 2 + 1024)
    async with running_server(**env) as server, held_run(server) as run:
        pid = server.process.pid
        baseline = process_sample(pid)
        await run.publish(
            "status", {"status": "running", "t": time.time()}
        )  # every subscriber's first event (replayed)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            "node",
            str(CLIENT),
            server.ws_url,
            run.token,
            str(run.run_id),
            str(args.subscribers),
            str(args.connects),
            stdout=asyncio.subprocess.PIPE,
            cwd=CLIENT.parent.parent,
        )
        client = Client(process)
        try:
            await asyncio.wait_for(client.ready.wait(), timeout=args.connect_timeout)
        except TimeoutError:
            process.terminate()
            raise RuntimeError(f"subscribers not live after {args.connect_timeout}s: {client.progress}") from None
        connect_seconds = time.monotonic() - started
        samples = await trickle(run, pid, client, args)
        await run.finish()  # terminal status event + END_STREAM: every subscription completes
        try:
            await asyncio.wait_for(client.done.wait(), timeout=120)
        except TimeoutError:
            process.terminate()
            await client.done.wait()
        await process.wait()
        expected = run.published + 1  # the events published, plus finish's terminal status event
    return report(args, client.summary or {}, samples, baseline, expected, connect_seconds, fd_limit)


async def trickle(run: Any, pid: int, client: Client, args: argparse.Namespace) -> list[dict[str, float]]:
    """Events at `args.rate` per second for `args.minutes`, RSS sampled every `args.sample` seconds."""
    samples: list[dict[str, float]] = []
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    next_sample = t0
    interval = 1 / args.rate
    while (now := time.monotonic()) < end:
        if now >= next_sample:
            samples.append(
                {"t": round(now - t0, 1), **process_sample(pid), "deliveries": client.progress.get("deliveries", 0)}
            )
            next_sample += args.sample
        await run.publish("content", {"content": "tick", "t": time.time()})
        await asyncio.sleep(max(0.0, t0 + run.published * interval - time.monotonic()))
    samples.append(
        {
            "t": round(time.monotonic() - t0, 1),
            **process_sample(pid),
            "deliveries": client.progress.get("deliveries", 0),
        }
    )
    return samples


def report(
    args: argparse.Namespace,
    summary: dict[str, Any],
    samples: list[dict[str, float]],
    baseline: dict[str, float],
    expected: int,
    connect_seconds: float,
    fd_limit: int,
) -> dict[str, Any]:
    after_warmup = [s for s in samples if s["t"] >= args.warmup] or samples
    half = samples[len(samples) // 2 :]
    slope = slope_per_minute([(s["t"], s["rss_mb"]) for s in half])
    lasts = {int(k): v for k, v in summary.get("last_sequences", {}).items()}
    short = sum((expected - last) * n for last, n in lasts.items() if last < expected)
    return {
        "benchmark": "soak",
        "database": "postgres" if args.postgres else "sqlite",
        "subscribers": args.subscribers,
        "minutes": args.minutes,
        "events_per_second": args.rate,
        "fd_soft_limit": fd_limit,
        "connect_seconds": round(connect_seconds, 1),
        "events_published": expected,
        "deliveries": summary.get("deliveries"),
        "deliveries_expected": expected * args.subscribers,
        "lost": summary.get("gaps", 0) + short,
        "repeated": summary.get("repeated"),
        "disconnects": summary.get("disconnects"),
        "client_errors": summary.get("errors"),
        "latency_ms": summary.get("latency_ms"),
        "rss_mb": {
            "before_subscribers": round(baseline["rss_mb"], 1),
            "start_after_warmup": round(after_warmup[0]["rss_mb"], 1),
            "end": round(samples[-1]["rss_mb"], 1),
            "max": round(max(s["rss_mb"] for s in samples), 1),
            "growth_after_warmup": round(samples[-1]["rss_mb"] - after_warmup[0]["rss_mb"], 1),
            "slope_mb_per_min_second_half": round(slope, 3),
            "flat_threshold_mb_per_min": FLAT_MB_PER_MIN,
            "flat": abs(slope) <= FLAT_MB_PER_MIN,
            "warmup_seconds": args.warmup,
        },
        "server_fds": {"start": samples[0]["fds"], "end": samples[-1]["fds"]},
        "server_threads": {"start": samples[0]["threads"], "end": samples[-1]["threads"]},
        "samples": [
            {"t": s["t"], "rss_mb": round(s["rss_mb"], 1), "fds": s["fds"], "deliveries": s["deliveries"]}
            for s in samples
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=3.0, help="events per second")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--warmup", type=float, default=None, help="seconds (default: 10%% of the run, at least 30)")
    parser.add_argument("--connects", type=int, default=100, help="concurrent connection handshakes")
    parser.add_argument("--connect-timeout", type=float, default=300)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = max(30.0, args.minutes * 6)
    print(json.dumps(asyncio.run(soak(args)), indent=2))


if __name__ == "__main__":
    main()
