"""Faults on a real cluster: 2 × `runplane serve` + 2 × `runplane worker` as subprocesses, PostgreSQL,
and a PRIVATE redis-server without persistence that this module kills and restarts.

(a) a worker SIGKILLed mid-run, (b) an API process SIGKILLed under 4 streams of one user, (c) Redis killed for
0.2 s and for 3 s while runs are queued and running, (d) agent/start during the outage, (e) a worker started
while Redis is down (it waits, then works) and stopped with SIGTERM while Redis is down (exit status 0). After each:
- every run is terminal within the lease + reaper bound (the time is printed), none stays queued;
- every stream, followed with Last-Event-ID reconnects across both servers, got every event once (0 lost, 0 repeated);
- no user is refused a stream after the stream-lease bound;
- both workers are alive, and /api/health/deep shows them.

Short leases and intervals (settings below) keep it to a couple of minutes. Only in the PostgreSQL pass.
RUNPLANE_FAULTS_REPORT=<file> appends each scenario's recovery times as JSON lines (bench/bench_faults.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.events.helpers import RedisProcess
from tests.runs.helpers import LONG_PROMPT, TERMINAL, make_thread, sse_messages, start_run
from tests.runs.procs import (
    Process,
    base_env,
    needs_redis_server,
    postgres_and_redis_or_skip,
    start_serve,
    start_worker,
    wait_worker_ready,
)
from tests.support import UserHandle, create_postgres_database, drop_postgres_database, free_port, register_user

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("RUNPLANE_TEST_DATABASE") != "postgres", reason="the fault suite runs in the PostgreSQL pass"
    ),
]

# Seconds. A dead worker's run is failed within LEASE + REAPER; a dead server's stream slots free within
# STREAM_LEASE; a job Redis lost is pushed again after REQUEUE + REAPER.
LEASE, HEARTBEAT, REAPER, REQUEUE, STREAM_LEASE = 3, 1, 1, 2, 4
CHUNK_DELAY = 0.12  # the scripted reply (~30 words) lasts ~4 s: long enough to hit mid-run
SLACK = 20.0  # a loaded CI machine (2 cores, many processes)
ADMIN_KEY = "faults-admin-key-0123456789"
ADMIN = {"X-API-Key": ADMIN_KEY}
RUN_BOUND = LEASE + REAPER + REQUEUE + SLACK
STREAM_BOUND = STREAM_LEASE + 2 + SLACK / 2


@dataclass
class Cluster:
    env: dict[str, str]
    logs: Path
    redis: RedisProcess
    procs: dict[str, Process] = field(default_factory=dict)

    @property
    def servers(self) -> list[Process]:
        return [p for name, p in sorted(self.procs.items()) if name.startswith("api")]

    @property
    def workers(self) -> list[Process]:
        return [p for name, p in sorted(self.procs.items()) if name.startswith("worker")]

    async def start(self, name: str) -> None:
        if name.startswith("api"):
            self.procs[name] = await start_serve(name, self.env, self.logs)
        else:
            self.procs[name] = start_worker(name, {**self.env, "RUNPLANE_LOG_LEVEL": "INFO"}, self.logs)
            await wait_worker_ready(self.procs[name])

    async def make_whole(self) -> None:
        """Every test starts from the full cluster (an earlier test may have killed a part of it)."""
        if self.redis.proc is None:
            await asyncio.to_thread(self.redis.start)
        for name, proc in list(self.procs.items()):
            if not proc.alive:
                await self.start(name)


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    await postgres_and_redis_or_skip()
    needs_redis_server()
    tmp = tmp_path_factory.mktemp("faults")
    redis = RedisProcess(free_port(), tmp)
    await asyncio.to_thread(redis.start)
    database = await create_postgres_database()
    env = base_env(
        tmp,
        database_url=f"postgres://postgres@127.0.0.1:5432/{database}",
        redis_url=redis.url,
        run_queue="arq",
        max_concurrent_runs=2,  # 4 runs in flight in all: the fifth and sixth wait queued
        scripted_chunk_delay=CHUNK_DELAY,
        run_lease_seconds=LEASE,
        run_heartbeat_seconds=HEARTBEAT,
        reaper_interval_seconds=REAPER,
        run_requeue_seconds=REQUEUE,
        outbox_interval_seconds=0.2,
        worker_beat_seconds=1,
        stream_lease_seconds=STREAM_LEASE,
        sse_heartbeat_seconds=1,
        rate_limit_per_minute=100_000,
        admin_api_key=ADMIN_KEY,
        run_starts_per_minute=100_000,
    )
    made = Cluster(env, tmp / "logs", redis)
    try:
        await asyncio.gather(made.start("api-a"), made.start("api-b"))
        await asyncio.gather(made.start("worker-1"), made.start("worker-2"))
        yield made
    finally:
        await asyncio.gather(*(p.stop() for p in made.procs.values()), return_exceptions=True)
        redis.kill()
        await drop_postgres_database(database)


@pytest.fixture
async def whole(cluster: Cluster) -> Cluster:
    await cluster.make_whole()
    return cluster


# ---- a stream that follows a run whatever dies ------------------------------------------------


@dataclass
class Followed:
    sequences: list[int] = field(default_factory=list)
    refusals: list[float] = field(default_factory=list)  # monotonic times of 429 answers
    connected: list[float] = field(default_factory=list)  # monotonic times of 200 answers
    reconnects: int = 0


async def follow(
    cluster: Cluster,
    user: UserHandle,
    run_id: str,
    *,
    first: int = 0,
    seen: Followed | None = None,
    timeout: float = 90,
) -> Followed:
    """Read the run's SSE stream to its end like an EventSource: on any break, reconnect (to the other server
    when one is down) with Last-Event-ID = the last sequence seen. `seen` fills as it goes."""
    seen, servers = seen or Followed(), [first, 1 - first]
    async with asyncio.timeout(timeout):
        while True:
            alive = [cluster.servers[i] for i in servers if cluster.servers[i].alive] or cluster.servers
            if await _read_once(alive[0], user, run_id, seen):
                return seen
            seen.reconnects += 1
            servers.reverse()
            await asyncio.sleep(0.2)


async def _read_once(server: Process, user: UserHandle, run_id: str, seen: Followed) -> bool:
    """One connection; True once the run's last event (or a 204: nothing more will come) was read."""
    headers = dict(user.headers)
    if seen.sequences:
        headers["Last-Event-ID"] = str(seen.sequences[-1])
    try:
        async with (
            httpx.AsyncClient(base_url=server.base_url, timeout=httpx.Timeout(5, read=10)) as http,
            http.stream("GET", f"/api/agent-run/{run_id}/stream", headers=headers) as response,
        ):
            if response.status_code == 204:
                return True
            if response.status_code == 429:
                seen.refusals.append(time.monotonic())
                return False
            assert response.status_code == 200, (await response.aread()).decode()
            seen.connected.append(time.monotonic())
            async for message in sse_messages(response):
                frame = message.json()
                seen.sequences.append(int(frame["sequence"]))
                if frame["type"] == "status" and frame.get("status") in TERMINAL:
                    return True
    except httpx.HTTPError:
        pass  # the server died under us, or Redis blinked: reconnect
    return False


# ---- checks shared by every scenario -----------------------------------------------------------


async def api(cluster: Cluster) -> httpx.AsyncClient:
    server = next(p for p in cluster.servers if p.alive)
    return httpx.AsyncClient(base_url=server.base_url, timeout=15)


async def wait_all_terminal(cluster: Cluster, user: UserHandle, run_ids: list[str], since: float) -> float:
    """Seconds from `since` until every run was terminal; fails after RUN_BOUND (or a run stuck queued)."""
    async with await api(cluster) as http:
        while True:
            runs = [(await http.get(f"/api/agent-run/{r}", headers=user.headers)).json() for r in run_ids]
            if all(run["status"] in TERMINAL for run in runs):
                return time.monotonic() - since
            if time.monotonic() - since > RUN_BOUND:
                stuck = {run["id"]: run["status"] for run in runs if run["status"] not in TERMINAL}
                raise AssertionError(f"runs not terminal {RUN_BOUND}s after the fault: {stuck}")
            await asyncio.sleep(0.3)


async def assert_streams_exact(cluster: Cluster, user: UserHandle, followed: dict[str, Followed]) -> None:
    """0 lost, 0 repeated: what each follower read is exactly the run's log, 1..N."""
    async with await api(cluster) as http:
        for run_id, seen in followed.items():
            body = (await http.get(f"/api/agent-run/{run_id}/events", headers=user.headers)).json()
            logged = [int(e["sequence"]) for e in body["events"]]
            assert logged == list(range(1, len(logged) + 1)), logged
            assert seen.sequences == logged, (run_id, seen.sequences, logged)


async def assert_workers_alive(cluster: Cluster) -> None:
    for worker in cluster.workers:
        assert worker.alive, f"{worker.name} exited with {worker.popen.returncode}:\n{worker.log_tail()}"
    deadline = time.monotonic() + 15
    async with await api(cluster) as http:
        while True:
            health = (await http.get("/api/health/deep")).json()
            workers = health["components"]["workers"]
            if workers["alive"] >= 2 and all(w["redis_ok"] for w in workers["workers"] if w["alive"]):
                return
            assert time.monotonic() < deadline, workers
            await asyncio.sleep(0.5)


def report(scenario: str, **figures: Any) -> None:
    line = json.dumps({"scenario": scenario, **figures})
    print(line)
    if path := os.environ.get("RUNPLANE_FAULTS_REPORT"):
        with open(path, "a") as out:
            out.write(line + "\n")


async def start_runs(cluster: Cluster, user: UserHandle, count: int) -> list[str]:
    async with await api(cluster) as http:
        threads = [await make_thread(http, user) for _ in range(count)]
        return [(await start_run(http, user, t, prompt=LONG_PROMPT))["agent_run_id"] for t in threads]


async def wait_status(cluster: Cluster, user: UserHandle, run_id: str, statuses: set[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with await api(cluster) as http:
        while (await http.get(f"/api/agent-run/{run_id}", headers=user.headers)).json()["status"] not in statuses:
            assert time.monotonic() < deadline, f"run {run_id} never reached {statuses}"
            await asyncio.sleep(0.2)


# ---- the scenarios -------------------------------------------------------------------------------


async def test_a_worker_sigkilled_mid_run(whole: Cluster) -> None:
    async with await api(whole) as http:
        user = await register_user(http)
    run_ids = await start_runs(whole, user, 4)
    followers = {r: asyncio.create_task(follow(whole, user, r, first=i % 2)) for i, r in enumerate(run_ids)}
    for run_id in run_ids:
        await wait_status(whole, user, run_id, {"running"} | TERMINAL)
    victim = whole.procs["worker-1"]
    victim.kill()  # SIGKILL: its runs' leases stop being renewed, arq keeps its in-progress keys
    killed = time.monotonic()
    took = await wait_all_terminal(whole, user, run_ids, killed)
    followed = {r: await task for r, task in followers.items()}
    await assert_streams_exact(whole, user, followed)
    async with await api(whole) as http:
        runs = [(await http.get(f"/api/agent-run/{r}", headers=user.headers)).json() for r in run_ids]
        failed = [run for run in runs if run["status"] == "failed"]
        assert all("stopped responding" in (run["error"] or "") for run in failed), failed
        # The dead worker's arq in-progress keys do not show as queued work (the reaper drops them).
        deadline = time.monotonic() + 10 * REAPER + SLACK
        while (arq := (await http.get("/api/inngest", headers=ADMIN)).json()["arq"])["stale_jobs"]:
            assert time.monotonic() < deadline, arq
            await asyncio.sleep(0.3)
        assert arq["queued_jobs"] == 0, arq
    await whole.start("worker-1")
    await assert_workers_alive(whole)
    report("worker_sigkill", all_terminal_s=round(took, 2), failed_runs=len(failed), bound_s=LEASE + REAPER)


async def test_an_api_process_sigkilled_under_four_streams_of_one_user(whole: Cluster) -> None:
    async with await api(whole) as http:
        user = await register_user(http)
    (run_id,) = await start_runs(whole, user, 1)
    await wait_status(whole, user, run_id, {"running"})
    b = whole.procs["api-b"]
    async with httpx.AsyncClient(base_url=b.base_url, timeout=15) as http:
        assert (await http.post(f"/api/agent-run/{run_id}/pause", headers=user.headers)).status_code == 200
    progress = [Followed() for _ in range(4)]
    followers = [asyncio.create_task(follow(whole, user, run_id, first=0, seen=seen)) for seen in progress]  # on api-a
    await _until(lambda: all(seen.connected for seen in progress), 20)
    whole.procs["api-a"].kill()  # its four stream slots are never given back: they must expire
    killed = time.monotonic()
    await _until(lambda: all(any(at > killed for at in seen.connected) for seen in progress), STREAM_BOUND + 10)
    recovered = time.monotonic() - killed
    async with httpx.AsyncClient(base_url=b.base_url, timeout=15) as http:
        assert (await http.post(f"/api/agent-run/{run_id}/resume", headers=user.headers)).status_code == 200
    took = await wait_all_terminal(whole, user, [run_id], killed)
    followed = [await task for task in followers]
    for seen in followed:
        assert all(at - killed <= STREAM_BOUND for at in seen.refusals), "refused a stream after the bound"
        await assert_streams_exact(whole, user, {run_id: seen})
    report(
        "api_sigkill_4_streams",
        streams_back_s=round(recovered, 2),
        refusals=sum(len(s.refusals) for s in followed),
        run_terminal_s=round(took, 2),
        bound_s=STREAM_LEASE,
    )
    await whole.start("api-a")
    await assert_workers_alive(whole)


@pytest.mark.parametrize("outage", [0.2, 3.0])
async def test_redis_killed_while_runs_are_queued_and_running_and_started(whole: Cluster, outage: float) -> None:
    async with await api(whole) as http:
        users = [await register_user(http), await register_user(http)]
    run_ids = {u.user_id: await start_runs(whole, u, 3) for u in users}  # 6 runs, 4 slots: 2 wait queued
    owner = {r: u for u in users for r in run_ids[u.user_id]}
    followers = {r: asyncio.create_task(follow(whole, owner[r], r, first=i % 2)) for i, r in enumerate(owner)}
    await wait_status(whole, users[0], run_ids[users[0].user_id][0], {"running"})
    whole.redis.kill()  # no persistence: the queue, in-progress keys, leases and windows are gone
    killed = time.monotonic()
    during = await _start_during_outage(whole, users[0]) if outage >= 1 else []
    await asyncio.sleep(max(0.0, outage - (time.monotonic() - killed)))
    await asyncio.to_thread(whole.redis.start)
    back = time.monotonic()
    for run_id in during:
        owner[run_id] = users[0]
        followers[run_id] = asyncio.create_task(follow(whole, users[0], run_id))
    took = {u.user_id: await wait_all_terminal(whole, u, [r for r in owner if owner[r] is u], back) for u in users}
    followed = {r: await task for r, task in followers.items()}
    for user in users:
        await assert_streams_exact(whole, user, {r: s for r, s in followed.items() if owner[r] is user})
    async with await api(whole) as http:
        statuses = [(await http.get(f"/api/agent-run/{r}", headers=owner[r].headers)).json()["status"] for r in owner]
    assert statuses.count("completed") == len(owner), statuses  # nothing was lost: every run ran to its end
    await assert_workers_alive(whole)
    report(
        f"redis_outage_{outage}s",
        all_terminal_after_redis_back_s=round(max(took.values()), 2),
        runs=len(owner),
        started_during_outage=len(during),
        refusals_after_bound=sum(1 for s in followed.values() for at in s.refusals if at - back > STREAM_BOUND),
    )


async def _start_during_outage(cluster: Cluster, user: UserHandle) -> list[str]:
    """(d) agent/start while Redis is down: answered 200 at once (the run waits in the outbox)."""
    started = []
    async with await api(cluster) as http:
        for _ in range(2):
            thread = await make_thread(http, user)
            at = time.monotonic()
            response = await http.post(
                f"/api/thread/{thread}/agent/start", json={"prompt": LONG_PROMPT}, headers=user.headers
            )
            assert response.status_code == 200, response.text
            assert time.monotonic() - at < 5, "the start waited on Redis"
            started.append(response.json()["agent_run_id"])
    return started


async def _until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def test_a_worker_waits_for_redis_at_start_up_and_exits_only_when_told(whole: Cluster) -> None:
    """Started while Redis is down it waits (alive), then works; SIGTERM ends it cleanly even with Redis down."""
    whole.redis.kill()
    late = start_worker("worker-late", {**whole.env, "RUNPLANE_LOG_LEVEL": "INFO"}, whole.logs)
    try:
        await asyncio.sleep(3)
        assert late.alive, late.log_tail()
        await asyncio.to_thread(whole.redis.start)
        await wait_worker_ready(late)
        async with await api(whole) as http:
            user = await register_user(http)
        run_ids = await start_runs(whole, user, 2)
        took = await wait_all_terminal(whole, user, run_ids, time.monotonic())
        whole.redis.kill()
        await asyncio.sleep(1)  # its polls now fail: it keeps going
        assert late.alive, late.log_tail()
        await late.stop()  # SIGTERM
        assert late.popen.returncode == 0, late.log_tail()
    finally:
        late.kill()
    await whole.make_whole()
    await assert_workers_alive(whole)
    report("worker_started_during_outage", runs_terminal_s=round(took, 2))
