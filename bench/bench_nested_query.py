"""Nested GraphQL query (projects -> threads -> runs -> last events) against its floor: a hand-written
Starlette endpoint running the same SQL and returning the same JSON (bench/floor_app.py).

Both servers run as single uvicorn processes on the same database; wrk drives each in turn, twice,
interleaved, and the best of each is kept. Prints JSON.

    python bench/bench_nested_query.py [--seconds 10] [--connections 16] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import JWT_SECRET, free_port, running_server  # noqa: E402

QUERY = (
    "{ projects(first: 10) { edges { node { name threads(first: 5) { edges { node { id "
    "runs(first: 3) { edges { node { status lastEvents(last: 3) { sequence type } } } } } } } } } } }"
)


async def seed(base_url: str, projects: int = 10, threads: int = 5, runs: int = 3) -> str:
    """Real runs through the API: 10 x 5 x 3 runs of the scripted agent, each with its events."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        tokens = (await client.post("/api/auth/register", json={"email": "nested@example.com", "password": "bench password"})).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        for p in range(projects):
            project = (await client.post("/api/projects", json={"name": f"project {p}"}, headers=headers)).json()
            for _ in range(threads):
                thread = (await client.post("/api/threads", json={"project_id": project["project_id"]}, headers=headers)).json()
                for _ in range(runs):
                    run = (await client.post(f"/api/thread/{thread['thread_id']}/agent/start", json={"prompt": "hello"}, headers=headers)).json()
                    await _wait_finished(client, run["agent_run_id"], headers)
        return str(tokens["access_token"])


async def _wait_finished(client: httpx.AsyncClient, run_id: str, headers: dict[str, str]) -> None:
    for _ in range(500):
        status = (await client.get(f"/api/agent-run/{run_id}/status", headers=headers)).json()["status"]
        if status in {"completed", "failed", "stopped"}:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"run {run_id} did not finish")


def wrk(url: str, token: str, body: str | None, seconds: int, connections: int) -> float:
    script = Path(tempfile.mkdtemp()) / "post.lua"
    method = "POST" if body is not None else "GET"
    script.write_text(
        f'wrk.method = "{method}"\nwrk.headers["Authorization"] = "Bearer {token}"\n'
        f'wrk.headers["Content-Type"] = "application/json"\n'
        + (f"wrk.body = {json.dumps(body)}\n" if body is not None else "")
    )
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    env = {}
    if args.postgres:
        from tests.support import create_postgres_database

        env["RUNPLANE_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{await create_postgres_database()}"
    async with running_server(**env) as server:
        token = await seed(server.base_url)
        port = free_port()
        floor = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--port", str(port), "--log-level", "warning", "--loop", "uvloop", "--http", "httptools"],
            env={**os.environ, "RUNPLANE_DATABASE_URL": server.database_url, "RUNPLANE_JWT_SECRET": JWT_SECRET},
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            floor_url = f"http://127.0.0.1:{port}/floor"
            await _same_answer(server.base_url, floor_url, token)
            graphql, hand = [], []
            for _ in range(2):  # interleaved: the machine is shared and noisy
                graphql.append(wrk(server.base_url + "/graphql", token, json.dumps({"query": QUERY}), args.seconds, args.connections))
                hand.append(wrk(floor_url, token, "{}", args.seconds, args.connections))
        finally:
            floor.terminate()
            floor.wait(10)
    print(json.dumps({
        "benchmark": "nested_query", "database": "postgres" if args.postgres else "sqlite",
        "shape": "10 projects x 5 threads x 3 runs x 3 last events",
        "graphql_rps": graphql, "floor_rps": hand,
        "graphql_vs_floor": round(max(graphql) / max(hand), 3),
    }, indent=2))


async def _same_answer(base_url: str, floor_url: str, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(50):
            try:
                floor_json = (await client.post(floor_url, headers=headers)).json()
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        graphql_json = (await client.post(base_url + "/graphql", json={"query": QUERY}, headers=headers)).json()
    if floor_json != graphql_json:
        raise RuntimeError("the floor and GraphQL answers differ: the comparison would be unfair")


if __name__ == "__main__":
    asyncio.run(main())
