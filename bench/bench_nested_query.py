"""Nested GraphQL query (projects -> threads -> runs -> last events) against its floor: a hand-written
Starlette endpoint running the same SQL and returning the same JSON (bench/floor_app.py).

Both servers run as single uvicorn processes on the same database. Before any load, both must answer 200
with identical JSON (GraphQL without `errors`). Then wrk drives each in turn, `--rounds` times, interleaved
(the machine is shared and noisy): each round reports requests/s, latency percentiles and the non-2xx and
socket-error counts wrk saw (a run with errors is reported, not hidden). Prints JSON.

    python bench/bench_nested_query.py [--seconds 10] [--connections 16] [--rounds 3] [--postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import JWT_SECRET, free_port, running_server
from bench.nested_bound import strawberry_bound

QUERY = (
    "{ projects(first: 10) { edges { node { name threads(first: 5) { edges { node { id "
    "runs(first: 3) { edges { node { status lastEvents(last: 3) { sequence type } } } } } } } } } } }"
)


async def seed(base_url: str, projects: int = 10, threads: int = 5, runs: int = 3) -> str:
    """Real runs through the API: 10 x 5 x 3 runs of the scripted agent, each with its events."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        tokens = (
            await client.post("/api/auth/register", json={"email": "nested@example.com", "password": "bench password"})
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        for p in range(projects):
            project = (await client.post("/api/projects", json={"name": f"project {p}"}, headers=headers)).json()
            for _ in range(threads):
                thread = (
                    await client.post("/api/threads", json={"project_id": project["project_id"]}, headers=headers)
                ).json()
                for _ in range(runs):
                    run = (
                        await client.post(
                            f"/api/thread/{thread['thread_id']}/agent/start", json={"prompt": "hello"}, headers=headers
                        )
                    ).json()
                    await _wait_finished(client, run["agent_run_id"], headers)
        return str(tokens["access_token"])


async def _wait_finished(client: httpx.AsyncClient, run_id: str, headers: dict[str, str]) -> None:
    for _ in range(500):
        status = (await client.get(f"/api/agent-run/{run_id}/status", headers=headers)).json()["status"]
        if status in {"completed", "failed", "stopped"}:
            return
        await asyncio.sleep(0.02)
    raise RuntimeError(f"run {run_id} did not finish")


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, token: str, body: str, seconds: int, connections: int, pid: int) -> dict[str, Any]:
    """One wrk run: POST `body` (JSON) with the bearer token. Long Lua strings carry the body verbatim.
    Also the server's CPU time per request: steadier than requests/s on a shared machine."""
    script = Path(tempfile.mkdtemp()) / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f'wrk.headers["Authorization"] = "Bearer {token}"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [==[{body}]==]\n"
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    cpu = cpu_seconds(pid)
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = parse_wrk(out)
    result["server_cpu_ms_per_request"] = round((cpu_seconds(pid) - cpu) * 1000 / max(result["requests"], 1), 2)
    return result


def parse_wrk(out: str) -> dict[str, Any]:
    def number(pattern: str) -> float:
        found = re.search(pattern, out)
        return float(found.group(1)) if found else 0.0

    def ms(value: str, unit: str) -> float:
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    latency = {
        f"p{q}": ms(*m.groups())
        for q, m in ((q, re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)", out, re.M)) for q in (50, 90, 99))
        if m
    }
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": number(r"Requests/sec:\s+([\d.]+)"),
        "requests": int(number(r"(\d+) requests in")),
        "non_2xx": int(number(r"Non-2xx or 3xx responses: (\d+)")),
        "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        "latency_ms": latency,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment of the GraphQL server",
    )
    args = parser.parse_args()
    # The seed makes 10 projects for one user: past the free plan's project cap, so a roomier default plan.
    env = {"RUNPLANE_BILLING_DEFAULT_PLAN": "premium", **dict(item.split("=", 1) for item in args.server_env)}
    if args.postgres:
        from tests.support import create_postgres_database

        env["RUNPLANE_DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{await create_postgres_database()}"
    async with running_server(**env) as server:
        token = await seed(server.base_url)
        port = free_port()
        floor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "bench.floor_app:app",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
            ],
            env={**os.environ, "RUNPLANE_DATABASE_URL": server.database_url, "RUNPLANE_JWT_SECRET": JWT_SECRET},
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            floor_url = f"http://127.0.0.1:{port}/floor"
            answer_bytes = await same_answer(server.base_url + "/graphql", floor_url, token)
            graphql, hand = [], []
            for _ in range(args.rounds):  # interleaved: the machine is shared and noisy
                graphql.append(
                    wrk(
                        server.base_url + "/graphql",
                        token,
                        json.dumps({"query": QUERY}),
                        args.seconds,
                        args.connections,
                        server.process.pid,
                    )
                )
                hand.append(wrk(floor_url, token, "{}", args.seconds, args.connections, floor.pid))
            await same_answer(server.base_url + "/graphql", floor_url, token)  # still healthy after the load
        finally:
            floor.terminate()
            floor.wait(10)
    best_graphql, best_floor = max(r["rps"] for r in graphql), max(r["rps"] for r in hand)
    cpu_graphql = statistics.median(r["server_cpu_ms_per_request"] for r in graphql)
    cpu_floor = statistics.median(r["server_cpu_ms_per_request"] for r in hand)
    bound = await strawberry_bound(QUERY)
    print(
        json.dumps(
            {
                "benchmark": "nested_query",
                "database": "postgres" if args.postgres else "sqlite",
                "server_env": args.server_env,
                "shape": "10 projects x 5 threads x 3 runs x 3 last events",
                "response_bytes": answer_bytes,
                "connections": args.connections,
                "seconds": args.seconds,
                "graphql": graphql,
                "floor": hand,
                "graphql_rps_best": best_graphql,
                "floor_rps_best": best_floor,
                "graphql_vs_floor": round(best_graphql / best_floor, 3) if best_floor else None,
                "graphql_vs_floor_per_round": [
                    round(g["rps"] / f["rps"], 3) if f["rps"] else None for g, f in zip(graphql, hand, strict=False)
                ],
                "non_2xx": {"graphql": sum(r["non_2xx"] for r in graphql), "floor": sum(r["non_2xx"] for r in hand)},
                "socket_errors": {
                    "graphql": sum(r["socket_errors"] for r in graphql),
                    "floor": sum(r["socket_errors"] for r in hand),
                },
                "server_cpu_ms_per_request": {
                    "graphql": cpu_graphql,
                    "floor": cpu_floor,
                    "floor_vs_graphql": round(cpu_floor / cpu_graphql, 3),
                },
                # Strawberry alone executing this selection over plain in-memory objects (no database, no HTTP): what
                # any resolver code on this stack costs at least, per request, in this process.
                "strawberry_in_memory_execute_cpu_ms": bound,
            },
            indent=2,
        )
    )


async def same_answer(graphql_url: str, floor_url: str, token: str) -> int:
    """Both answer 200 with identical JSON, else the comparison would be unfair (or measure error pages)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(100):
            try:
                floor_response = await client.post(floor_url, content="{}", headers=headers)
                break
            except httpx.TransportError:
                await asyncio.sleep(0.1)
        graphql_response = await client.post(graphql_url, content=json.dumps({"query": QUERY}), headers=headers)
    for name, response in (("floor", floor_response), ("graphql", graphql_response)):
        if response.status_code != 200:
            raise RuntimeError(f"{name} answered {response.status_code}: {response.text[:500]}")
    graphql_json, floor_json = graphql_response.json(), floor_response.json()
    if "errors" in graphql_json:
        raise RuntimeError(f"GraphQL errors: {graphql_json['errors']}")
    if floor_json != graphql_json:
        raise RuntimeError("the floor and GraphQL answers differ: the comparison would be unfair")
    if len(graphql_json["data"]["projects"]["edges"]) != 10:
        raise RuntimeError("the seed did not make 10 projects (plan limit?)")
    return len(graphql_response.content)


if __name__ == "__main__":
    asyncio.run(main())
