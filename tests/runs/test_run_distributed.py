"""Several real processes sharing PostgreSQL and Redis: `runplane serve` x2 (A and B, RUNPLANE_RUN_QUEUE=arq,
so neither executes runs) and one `runplane worker`. A subscriber on A watches a run the worker executes;
the stop goes to B. Rate-limit counters live in Redis, so they hold across A and B. Killing the worker
mid-run leaves the run to the reaper, which fails it and tells every subscriber (ERROR).

Skipped when PostgreSQL or Redis is unreachable, unless CI=true.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.runs.clients import legacy_subscribe, node_subscribe
from tests.runs.helpers import (
    LONG_PROMPT,
    POLL,
    assert_contiguous,
    assert_ends,
    events_after,
    make_thread,
    read_stream,
    sse_messages,
    start_run,
    wait_for_status,
)
from tests.runs.procs import (
    Process,
    base_env,
    isolated_redis_url,
    postgres_and_redis_or_skip,
    start_serve,
    start_worker,
    wait_worker_ready,
)
from tests.support import UserHandle, create_postgres_database, drop_postgres_database, register_user

LEASE, HEARTBEAT, REAPER = 4, 1, 1  # seconds: a dead worker's run is failed within ~LEASE + REAPER


@dataclass
class Cluster:
    a: Process
    b: Process
    worker: Process
    env: dict[str, str]


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    await postgres_and_redis_or_skip()
    tmp = tmp_path_factory.mktemp("cluster")
    database = await create_postgres_database()
    env = base_env(
        tmp,
        database_url=f"postgres://postgres@127.0.0.1:5432/{database}",
        redis_url=isolated_redis_url(),
        run_queue="arq",
        scripted_chunk_delay=0.15,
        run_lease_seconds=LEASE,
        run_heartbeat_seconds=HEARTBEAT,
        reaper_interval_seconds=REAPER,
    )
    procs: list[Process] = []
    try:
        # Both servers start together: migrations are serialized by a PostgreSQL advisory lock.
        a, b = await asyncio.gather(
            start_serve("server-a", env, tmp / "logs"), start_serve("server-b", env, tmp / "logs")
        )
        procs += [a, b]
        worker = start_worker("worker", {**env, "RUNPLANE_LOG_LEVEL": "INFO"}, tmp / "logs")
        procs.append(worker)
        await wait_worker_ready(worker)
        yield Cluster(a, b, worker, env)
    finally:
        await asyncio.gather(*(p.stop() for p in procs), return_exceptions=True)
        await drop_postgres_database(database)


@pytest.fixture
async def clients(cluster: Cluster) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with (
        httpx.AsyncClient(base_url=cluster.a.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=cluster.b.base_url, timeout=30) as b,
    ):
        yield a, b


async def first_event(
    client: httpx.AsyncClient, user: UserHandle, run_id: str, kind: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in await events_after(client, user, run_id):
            if event["type"] == kind:
                return event
        await asyncio.sleep(POLL)
    raise AssertionError(f"no {kind} event in {timeout}s")


async def test_start_latency_through_the_worker(
    cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """agent/start on A -> first event executed by the worker, seen on an SSE stream of A (printed)."""
    a, _ = clients
    user = await register_user(a)
    thread_id = await make_thread(a, user)
    started = time.monotonic()
    run_id = (await start_run(a, user, thread_id))["agent_run_id"]
    answered = time.monotonic()
    marks: dict[str, float] = {}
    async with (
        asyncio.timeout(30),
        a.stream("GET", f"/api/agent-run/{run_id}/stream", headers=user.headers) as response,
    ):
        async for message in sse_messages(response):
            frame = message.json()
            marks.setdefault(frame.get("status") or frame["type"], time.monotonic())
            if frame["type"] == "content" and "stop" not in marks:  # seen enough: do not wait for the reply's end
                marks["stop"] = time.monotonic()
                assert (await a.post(f"/api/agent-run/{run_id}/stop", headers=user.headers)).status_code == 200
    assert "stopped" in marks
    print(
        json.dumps(
            {
                "start_latency_ms": {
                    "start_response": round((answered - started) * 1000, 1),
                    "first_event": round((marks["queued"] - started) * 1000, 1),
                    "running_by_worker": round((marks["running"] - started) * 1000, 1),
                    "first_content": round((marks["content"] - started) * 1000, 1),
                }
            }
        )
    )
    assert marks["running"] - started < 10


async def test_subscriber_on_a_sees_the_worker_run_stopped_through_b(
    cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = clients
    user = await register_user(a)  # a token of A is good on B: same secret, same database
    thread_id = await make_thread(a, user)
    run_id = (await start_run(a, user, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    sse = asyncio.create_task(read_stream(a, run_id, user.headers, timeout=40))
    graphql = asyncio.create_task(legacy_subscribe(cluster.a.ws_url, user.access_token, run_id))
    await first_event(a, user, run_id, "content")  # the worker is streaming the reply
    stop = await b.post(f"/api/agent-run/{run_id}/stop", headers=user.headers)
    assert stop.status_code == 200, stop.text
    frames = await sse
    assert_contiguous(frames)
    assert_ends(frames, "stopped")
    events = await asyncio.wait_for(graphql, 20)
    assert [e["sequence"] for e in events] == [f["sequence"] for f in frames]
    assert events[-1]["payload"]["status"] == "stopped"
    run = await wait_for_status(b, user, run_id, "stopped", timeout=5)
    assert run["started_at"] and run["completed_at"]


async def test_rate_limit_counters_are_shared_by_both_servers(
    cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    a, b = clients
    for attempt in range(2):  # counts are per fixed minute: a burst that straddles a boundary is tried again
        user = await register_user(a)
        threads = [await make_thread(a, user) for _ in range(7)]
        if time.time() % 60 > 50:
            await asyncio.sleep(60 - time.time() % 60 + 0.5)
        window = int(time.time()) // 60
        runs = [
            await start_run(a if i % 2 else b, user, thread_id, prompt=LONG_PROMPT)
            for i, thread_id in enumerate(threads[:6])
        ]
        refused = await a.post(f"/api/thread/{threads[6]}/agent/start", json={}, headers=user.headers)
        if refused.status_code == 429 or int(time.time()) // 60 == window or attempt:
            break
        await stop_all(b, user, runs)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1, refused.text
    # Four streams in all, whichever server holds them (of a paused run, so that they stay open).
    run_id = runs[0]["agent_run_id"]
    await wait_for_status(a, user, run_id, "running")
    assert (await b.post(f"/api/agent-run/{run_id}/pause", headers=user.headers)).status_code == 200
    url = f"/api/agent-run/{run_id}/stream"
    async with AsyncExitStack() as stack:
        for http in (a, b, a, b):
            response = await stack.enter_async_context(http.stream("GET", url, headers=user.headers))
            assert response.status_code == 200
        for http in (a, b):
            fifth = await http.get(url, headers=user.headers)
            assert fifth.status_code == 429 and fifth.headers["retry-after"], fifth.text
    await stop_all(b, user, runs)


async def stop_all(client: httpx.AsyncClient, user: UserHandle, runs: list[dict[str, Any]]) -> None:
    for run in runs:
        assert (
            await client.post(f"/api/agent-run/{run['agent_run_id']}/stop", headers=user.headers)
        ).status_code == 200
    for run in runs:
        await wait_for_status(client, user, run["agent_run_id"], {"stopped", "completed"}, timeout=20)


async def test_killed_worker_run_is_failed_by_the_reaper(
    cluster: Cluster, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    """Last in this module: it kills the cluster's worker."""
    a, b = clients
    user = await register_user(a)
    thread_id = await make_thread(a, user)
    run_id = (await start_run(a, user, thread_id, prompt=LONG_PROMPT + " " + LONG_PROMPT))["agent_run_id"]
    sse = asyncio.create_task(read_stream(a, run_id, user.headers, timeout=60))
    node = asyncio.create_task(node_subscribe(cluster.b.ws_url, user.access_token, run_id, timeout=50))
    await first_event(a, user, run_id, "content")
    cluster.worker.kill()  # SIGKILL: no cleanup, no final event, the lease just stops being renewed
    killed_at = time.monotonic()

    frames = await sse
    assert time.monotonic() - killed_at < LEASE + REAPER + 10
    assert_contiguous(frames)
    assert_ends(frames, "failed")
    error = frames[-2]
    assert error["type"] == "error" and "stopped responding" in error["error"], error
    lines, code = await node
    assert code == 0, lines
    events = lines[1:-1]
    assert events[-2]["type"] == "error" and events[-1]["payload"]["status"] == "failed"
    run = await wait_for_status(b, user, run_id, "failed", timeout=5)
    assert "stopped responding" in run["error"]
    # The thread is not left busy by the dead run.
    refused_or_ok = await b.post(f"/api/thread/{thread_id}/agent/start", json={}, headers=user.headers)
    assert refused_or_ok.status_code == 200, refused_or_ok.text
