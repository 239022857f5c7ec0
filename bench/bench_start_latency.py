"""Start latency: POST /api/thread/{id}/agent/start until the first event arrives on the SSE stream
opened right after, with the offline scripted agent; p50/p99 over N runs. Prints JSON.

    python bench/bench_start_latency.py [--runs 100]

Runs execute in the server process (the embedded in-process queue).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import percentile, running_server


async def one_run(client: httpx.AsyncClient, thread_id: str, headers: dict[str, str]) -> tuple[float, float]:
    """(ms to the first event, ms to the terminal status event)."""
    started = time.perf_counter()
    response = await client.post(f"/api/thread/{thread_id}/agent/start", json={"prompt": "hello"}, headers=headers)
    assert response.status_code == 200, response.text
    run_id = response.json()["agent_run_id"]
    first = None
    async with client.stream("GET", f"/api/agent-run/{run_id}/stream", headers=headers) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                first = first or time.perf_counter()
                event = json.loads(line[6:])
                if event["type"] == "status" and event["status"] in {"completed", "failed", "stopped"}:
                    break
    assert first is not None
    return (first - started) * 1000, (time.perf_counter() - started) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    async with running_server() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            tokens = (
                await client.post(
                    "/api/auth/register", json={"email": "start@example.com", "password": "bench password"}
                )
            ).json()
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            project = (await client.post("/api/projects", json={"name": "start"}, headers=headers)).json()
            thread = (
                await client.post("/api/threads", json={"project_id": project["project_id"]}, headers=headers)
            ).json()
            results = [await one_run(client, thread["thread_id"], headers) for _ in range(args.runs)]
    first, whole = [r[0] for r in results], [r[1] for r in results]
    print(
        json.dumps(
            {
                "benchmark": "start_latency",
                "runs": args.runs,
                "queue": "inprocess",
                "agent": "scripted",
                "first_event_p50_ms": round(percentile(first, 0.5), 2),
                "first_event_p99_ms": round(percentile(first, 0.99), 2),
                "whole_run_p50_ms": round(percentile(whole, 0.5), 2),
                "whole_run_p99_ms": round(percentile(whole, 0.99), 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
