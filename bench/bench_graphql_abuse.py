"""GraphQL abuse: what the server spends refusing each attack, side by side with a trivial `{ __typename }`.

One `runplane serve` subprocess (defaults: 1 MB body, 2000 tokens, depth 10, ...) on loopback; a lean
keep-alive HTTP/1.1 client sends each attack and the baseline in turn (interleaved, the machine is
shared), every request with a fresh operation name so the parse and validation caches never answer.
The figure is the client round-trip, which on loopback is the server's time plus a constant that the
baseline carries too. An attack that costs more than --budget seconds in total stops early. Prints JSON.

    python bench/bench_graphql_abuse.py [--reps 40] [--budget 20] [--only name,name]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.fanout_support import percentile, running_server

Body = Callable[[int], bytes]  # repetition number -> request body (unique text: no cache hits)


def op(query: str, variables: dict[str, Any] | None = None) -> Body:
    """`{name}` in the query becomes a unique operation name per repetition."""

    def body(rep: int) -> bytes:
        payload: dict[str, Any] = {"query": query.replace("{name}", f"Q{rep}")}
        if variables is not None:
            payload["variables"] = variables
        return json.dumps(payload).encode()

    return body


def fragment_bomb(levels: int, fan: int) -> str:
    """F_k spreads F_(k-1) `fan` times: fan**levels fields when expanded, a few hundred bytes of text."""
    fragments = ["fragment F0 on User { id }"]
    fragments += [f"fragment F{k} on User {{ " + f"...F{k - 1} " * fan + "}" for k in range(1, levels)]
    return "query {name} { me { ...F" + str(levels - 1) + " } } " + " ".join(fragments)


def nested_list(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


CASES: dict[str, Body] = {
    "baseline_typename": op("query {name} { __typename }"),
    "aliases_600": op("query {name} { " + " ".join(f"a{i}: __typename" for i in range(600)) + " }"),
    "directives_unknown_990": op("query {name} { __typename " + "@a " * 990 + "}"),
    "directives_include_300": op("query {name} { __typename " + "@include(if: true) " * 300 + "}"),
    "field_duplicates_1990": op("query {name} { me { " + "id " * 1990 + "} }"),
    "field_duplicates_inline_300": op("query {name} { me { " + "... on User { id } " * 300 + "} }"),
    "deep_query_150": op(
        "query {name} { " + "threads { edges { node { project { " * 37 + "id" + " } } } }" * 37 + " }"
    ),
    "fragment_cycle_2": op(
        "query {name} { me { ...A } } fragment A on User { id ...B } fragment B on User { id ...A }"
    ),
    "fragment_cycle_150": op(
        "query {name} { me { ...F0 } } "
        + " ".join(f"fragment F{i} on User {{ ...F{(i + 1) % 150} }}" for i in range(150))
    ),
    "fragment_bomb_6x10": op(fragment_bomb(6, 10)),
    "fragment_bomb_8x10": op(fragment_bomb(8, 10)),
    "fragment_duplicates_150": op(
        "query {name} { "
        + " ".join(f"...F{k}" for k in range(150))
        + " } "
        + " ".join(f"fragment F{k} on Query {{ me {{ id }} }}" for k in range(150))
    ),
    "unknown_fields_990": op("query {name} { me { " + " ".join(f"f{k}" for k in range(990)) + " } }"),
    "same_fragment_spreads_895": op("query {name} { me { " + "...F " * 895 + "} } fragment F on User { id }"),
    "operations_300": lambda i: json.dumps(
        {
            "query": " ".join(f"query Q{i}_{k} {{ __typename }}" for k in range(300)),
            "operationName": f"Q{i}_0",
        }
    ).encode(),
    "document_whitespace_900k": op("query {name} { __typename }" + " " * 900_000),
    "document_string_900k": op('query {name} { __typename @a(x: "' + "x" * 900_000 + '") }'),
    "batch_list_23000": lambda i: json.dumps(
        [{"query": f"query Q{i}_{k} {{ __typename }}"} for k in range(23_000)]
    ).encode(),
    "variables_3mb": op("query {name}($v: String) { __typename }", {"v": "x" * 3_000_000}),
    "variables_nested_100k": lambda i: (
        b'{"query": "query Q%d($v: [String]) { __typename }", "variables": {"v": ' % i + nested_list(100_000) + b"}}"
    ),
    "variables_list_200k": op(
        'mutation {name}($p: [String!]!) { deleteFiles(sandboxId: "U2FuZGJveDox", paths: $p) { __typename } }',
        {"p": ["a"] * 200_000},
    ),
}


@dataclass
class Measured:
    name: str
    size: int
    times: list[float] = field(default_factory=list)
    status: int = 0
    answer: str = ""


class Connection:
    """HTTP/1.1 keep-alive on loopback with as little client work as possible; reconnects when the server closes."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> tuple[int, bytes, float]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST /graphql HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\naccept: application/json\r\n"
            f"authorization: Bearer {self.token}\r\ncontent-length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        self.writer.write(head + body)  # buffered by the transport: a server that answers early is not blocked on
        status_line = await self.reader.readline()
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in {b"\r\n", b""}:
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        answer = await self.reader.readexactly(int(headers.get("content-length", "0")))
        elapsed = time.perf_counter() - started
        if headers.get("connection", "").lower() == "close" or status_line.split()[1] == b"413":
            await self.close()
        return int(status_line.split()[1]), answer, elapsed

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None


def summary(answer: bytes) -> str:
    try:
        decoded = json.loads(answer)
    except ValueError:
        return answer[:120].decode("latin-1")
    if isinstance(decoded, dict) and decoded.get("errors"):
        error = decoded["errors"][0]
        return f"{(error.get('extensions') or {}).get('code')}: {error['message'][:110]}"
    return json.dumps(decoded)[:120]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds one attack may take in total")
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    names = ["baseline_typename", *(n for n in args.only.split(",") if n)] if args.only else list(CASES)
    async with running_server() as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
            tokens = (
                await client.post(
                    "/api/auth/register", json={"email": "abuse@example.com", "password": "bench password"}
                )
            ).json()
        host, port = server.base_url.removeprefix("http://").split(":")
        conn = Connection(host, int(port), tokens["access_token"])
        measured = {name: Measured(name, len(CASES[name](0))) for name in names}
        for rep in range(10_000, 10_020):  # warm-up: imports, first-use caches, the connection
            await conn.post(CASES["baseline_typename"](rep))
        for rep in range(args.reps):
            for name in names:
                m = measured[name]
                if m.times and sum(m.times) > args.budget:
                    continue
                m.status, answer, elapsed = await conn.post(CASES[name](rep))
                m.times.append(elapsed)
                m.answer = summary(answer)
        await conn.close()
    base = statistics.median(measured["baseline_typename"].times)
    print(
        json.dumps(
            {
                "benchmark": "graphql_abuse",
                "unit": "ms, client round-trip on loopback (server work + constant overhead)",
                "baseline_median_ms": round(base * 1000, 3),
                "cases": [
                    {
                        "name": m.name,
                        "payload_bytes": m.size,
                        "reps": len(m.times),
                        "status": m.status,
                        "answer": m.answer,
                        "median_ms": round(statistics.median(m.times) * 1000, 3),
                        "p99_ms": round(percentile(m.times, 0.99) * 1000, 3),
                        "median_vs_baseline": round(statistics.median(m.times) / base, 1),
                    }
                    for m in measured.values()
                ],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
