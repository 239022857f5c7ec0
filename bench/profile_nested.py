"""In-process profile of bench_nested_query's GraphQL request: a real server in this loop (seeded through the
API), then N requests driven straight into the ASGI app (no sockets), under cProfile or timed.

    python bench/profile_nested.py [--postgres] [--n 300] [--profile out.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("RUNPLANE_JWT_SECRET", "bench-secret-" + "x" * 40)

from bench.bench_nested_query import QUERY, seed


async def call(app, token: str, body: bytes) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    sent = False
    status, chunks = 0, []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--profile")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from runplane.config import Settings
    from tests.support import create_postgres_database, start_server

    data = Path(tempfile.mkdtemp())
    url = f"sqlite://{data / 'p.sqlite3'}"
    if args.postgres:
        url = f"postgres://postgres@127.0.0.1:5432/{await create_postgres_database()}"
    settings = Settings.from_env(
        data_dir=data,
        database_url=url,
        redis_url="redis://127.0.0.1:6379/14",
        run_queue="inprocess",
        rate_limit_per_minute=0,
        run_starts_per_minute=0,
        max_streams_per_user=0,
        billing_default_plan="premium",
    )
    server = await start_server(settings)
    token = await seed(server.base_url)
    app = server.app
    body = json.dumps({"query": QUERY}).encode()
    status, out = await call(app, token, body)
    assert status == 200 and b"errors" not in out, out[:300]
    for _ in range(30):
        await call(app, token, body)
    times = []
    for _ in range(args.rounds):
        start = time.process_time()
        for _ in range(args.n):
            await call(app, token, body)
        times.append((time.process_time() - start) * 1000 / args.n)
    from runplane.schema import compiled

    print(
        json.dumps({"cpu_ms_per_request": [round(t, 3) for t in times], "bytes": len(out), "compiled": compiled.stats})
    )
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.n):
            await call(app, token, body)
        profiler.disable()
        profiler.dump_stats(args.profile)
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(60)
    await server.stop()


if __name__ == "__main__":
    asyncio.run(main())
