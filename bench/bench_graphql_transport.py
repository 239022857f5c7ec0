"""GraphQL over HTTP as frontends send it: one query, answered per Accept header and per persisted-query form.

Each mode sends the same query REQUESTS times (CONCURRENCY at once, keep-alive) to one `runplane serve`:
  json        Accept: application/json, full document (the baseline)
  urql        urql's default Accept (JSON types, then text/event-stream and multipart/mixed): JSON comes back
  sse         Accept: text/event-stream only: a one-event GraphQL-over-SSE stream
  apq_post    the document's sha256 only (extensions.persistedQuery), POST, after one registration
  apq_get     the same over GET (urql's default for hashed queries; cacheable)
Prints one JSON document: requests/s, p50/p99 latency (ms), request bytes on the wire and the answer's type.

    python bench/bench_graphql_transport.py [--requests 2000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import percentile, running_server

URQL_ACCEPT = (
    "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"
)
QUERY = """query Dashboard($first: Int!) {
  me { id email displayName isAdmin createdAt }
  projects(first: $first) {
    edges { cursor node { id name description createdAt updatedAt threads(first: 3) { nodes { id title createdAt } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""
VARIABLES = {"first": 5}
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
PERSISTED = {"persistedQuery": {"version": 1, "sha256Hash": HASH}}


def request_for(mode: str) -> dict[str, Any]:
    """httpx.request keyword arguments of one request of `mode`."""
    if mode == "apq_get":
        params = {"variables": json.dumps(VARIABLES), "extensions": json.dumps(PERSISTED)}
        return {"method": "GET", "url": "/graphql", "params": params, "headers": {"Accept": "application/json"}}
    body: dict[str, Any] = {"variables": VARIABLES}
    body.update({"extensions": PERSISTED} if mode == "apq_post" else {"query": QUERY})
    accept = {"json": "application/json", "urql": URQL_ACCEPT, "sse": "text/event-stream"}.get(mode, "application/json")
    headers = {"Accept": accept, "Content-Type": "application/json"}
    return {"method": "POST", "url": "/graphql", "content": json.dumps(body), "headers": headers}


async def measure(http: httpx.AsyncClient, mode: str, requests: int, concurrency: int) -> dict[str, Any]:
    template = request_for(mode)
    latencies: list[float] = []
    kinds: set[str] = set()
    sent = len(template.get("content", "")) + len(str(httpx.URL("/graphql", params=template.get("params"))))

    async def worker(count: int) -> None:
        for _ in range(count):
            started = time.perf_counter()
            answer = await http.request(**template)
            latencies.append(time.perf_counter() - started)
            assert answer.status_code == 200 and '"me"' in answer.text, answer.text[:300]
            kinds.add(answer.headers["content-type"].split(";")[0])

    started = time.perf_counter()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "request_bytes": sent,
        "answered_as": sorted(kinds),
    }


async def main(requests: int, concurrency: int) -> None:
    async with running_server() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
            email = f"bench-{time.time_ns()}@example.com"
            registered = await http.post(
                "/api/auth/register", json={"email": email, "password": "correct horse battery"}
            )
            http.headers["Authorization"] = f"Bearer {registered.json()['access_token']}"
            for n in range(5):
                await http.post("/api/projects", json={"name": f"p{n}"})
            registration = {"query": QUERY, "variables": VARIABLES, "extensions": PERSISTED}
            assert (await http.post("/graphql", json=registration)).status_code == 200
            results = {}
            for mode in ("json", "urql", "sse", "apq_post", "apq_get"):
                await measure(http, mode, concurrency * 10, concurrency)  # warm-up
                results[mode] = await measure(http, mode, requests, concurrency)
    print(json.dumps({"requests": requests, "concurrency": concurrency, "modes": results}, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.concurrency))
