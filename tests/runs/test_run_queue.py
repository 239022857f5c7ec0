"""The run queue's truth is the database (every run ends, whatever process dies), tested on the state machine's
functions with runs put in place directly (no timed runs), the session server's database, and a PRIVATE redis-server
that the test stops and starts (tests/events/helpers.py RedisProcess):

- the outbox: a start during a Redis outage keeps its row, the relay pushes it once Redis is back, one relay
  drains at a time (database lease);
- queued runs always end: a job Redis lost (or a dead worker's in-progress key) is pushed again; a run no
  worker started within RUNPLANE_RUN_QUEUE_TIMEOUT is failed with a clear error, freeing its thread;
- jobs of runs that ended are dropped from arq, and /api/inngest never reports them as queued.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from arq.constants import in_progress_key_prefix, job_key_prefix

from runplane.agents import lifecycle, outbox, reaper
from runplane.agents.dispatch import ARQ_QUEUE, QUIET_AFTER_FAILURE, ArqDispatcher, job_id
from runplane.clock import now
from runplane.models import AgentRun, Project, RunOutbox, Thread
from runplane.resolvers.queue import _arq_jobs
from tests.events.helpers import RedisProcess, free_port
from tests.runs.procs import needs_redis_server
from tests.support import LiveServer, UserHandle


@pytest.fixture
async def redis_proc(tmp_path: Path) -> AsyncIterator[RedisProcess]:
    needs_redis_server()
    proc = RedisProcess(free_port(), tmp_path)
    proc.start()
    try:
        yield proc
    finally:
        proc.kill()


@pytest.fixture
async def queue(redis_proc: RedisProcess) -> AsyncIterator[ArqDispatcher]:
    dispatcher = ArqDispatcher(redis_proc.url)
    try:
        yield dispatcher
    finally:
        await dispatcher.close()


async def queued_run(user: UserHandle, *, age: float = 0.0, in_outbox: bool = False) -> AgentRun:
    """A run put straight into `queued`, created `age` seconds ago (a factory: nothing executes it)."""
    owner = uuid.UUID(user.user_id)
    project = await Project.create(owner_id=owner, name="queue")
    thread = await Thread.create(owner_id=owner, project=project, title="queue")
    run = await AgentRun.create(
        owner_id=owner, project_id=project.id, thread=thread, active_thread_id=thread.id, model="scripted/demo"
    )
    await AgentRun.filter(id=run.id).update(created_at=now() - timedelta(seconds=age))
    if in_outbox:
        await outbox.add(run.id)
        await RunOutbox.filter(run_id=run.id).update(created_at=now() - timedelta(seconds=age))
    return run


async def has_job(queue: ArqDispatcher, run_id: uuid.UUID) -> bool:
    return run_id in await queue.queued_run_ids()


async def test_a_start_during_a_redis_outage_waits_in_the_outbox_and_is_pushed_when_redis_is_back(
    alice: UserHandle, redis_proc: RedisProcess, queue: ArqDispatcher
) -> None:
    run = await queued_run(alice, age=5, in_outbox=True)
    redis_proc.kill()
    assert not await outbox.send_now(queue, run.id)  # the fast path fails fast, and says so; the row stays
    assert await RunOutbox.exists(run_id=run.id)
    holder = f"test-{uuid.uuid4()}"
    relay = outbox.OutboxRelay(queue, holder, interval=1)
    with pytest.raises(Exception):  # noqa: B017 - the pass fails (logged by Periodic); the row stays
        await relay.pass_once()
    assert await RunOutbox.filter(run_id=run.id).values_list("attempts", flat=True) == [1]

    redis_proc.start()  # empty: no persistence
    await asyncio.sleep(QUIET_AFTER_FAILURE)  # pushes fail at once for a moment after a failed one
    assert await relay.pass_once() >= 1
    assert not await RunOutbox.exists(run_id=run.id) and await has_job(queue, run.id)
    assert await outbox.drain_once(queue) == 0 or not await RunOutbox.exists(run_id=run.id)


async def test_a_redis_that_never_answers_costs_a_start_one_bounded_wait(alice: UserHandle) -> None:
    """A partition (Redis accepts and never replies): the push gives up after the dispatcher's timeout, and
    pushes right after it fail at once; the runs stay in the outbox."""
    held: list[asyncio.StreamWriter] = []

    async def blackhole(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, read nothing, answer nothing

    server = await asyncio.start_server(blackhole, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    queue = ArqDispatcher(f"redis://127.0.0.1:{port}/0", timeout=0.5)
    first, second = await queued_run(alice, in_outbox=True), await queued_run(alice, in_outbox=True)
    try:
        started = time.monotonic()
        assert not await outbox.send_now(queue, first.id)
        assert time.monotonic() - started < 5  # bounded (the timeout, plus slack for a loaded machine)
        started = time.monotonic()
        assert not await outbox.send_now(queue, second.id)
        assert time.monotonic() - started < 0.3  # no second wait: the queue just failed
        assert await RunOutbox.filter(run_id__in=[first.id, second.id]).count() == 2
    finally:
        await queue.close()
        server.close()
        for writer in held:
            writer.close()
        await RunOutbox.filter(run_id__in=[first.id, second.id]).delete()


async def test_one_relay_drains_at_a_time_and_a_dead_holders_lease_expires() -> None:
    name = f"test-lease-{uuid.uuid4()}"
    assert await outbox.hold_lease(name, "a", 30)
    assert not await outbox.hold_lease(name, "b", 30)
    assert await outbox.hold_lease(name, "a", 0.01)  # renewal by the holder (shortened: "a" dies now)
    await asyncio.sleep(0.05)
    assert await outbox.hold_lease(name, "b", 30)  # once a's lease ran out


async def test_a_queued_run_whose_job_redis_lost_is_pushed_again(
    server: LiveServer, alice: UserHandle, redis_proc: RedisProcess, queue: ArqDispatcher
) -> None:
    services = server.app.state.services
    run = await queued_run(alice, age=services.settings.run_requeue_seconds + 5)
    fresh = await queued_run(alice, age=0)  # pushed a moment ago: left alone
    waiting = await queued_run(alice, age=services.settings.run_requeue_seconds + 5, in_outbox=True)  # the relay's
    assert await reaper.requeue_lost(services, queue) >= 1
    assert await has_job(queue, run.id) and not await has_job(queue, fresh.id) and not await has_job(queue, waiting.id)
    assert await reaper.requeue_lost(services, queue) == 0 or await has_job(queue, run.id)  # held: no new push

    # A worker SIGKILLed between taking the job and claiming the run leaves arq's in-progress key: no worker
    # would take the job again for hours. The run is still queued in the database, so it is pushed again.
    pool = await queue._connection()
    await pool.set(in_progress_key_prefix + job_id(run.id), b"1")
    assert await queue.ensure_queued(run.id)
    assert not await pool.exists(in_progress_key_prefix + job_id(run.id)) and await has_job(queue, run.id)


async def test_a_run_no_worker_started_is_failed_after_the_queue_timeout_and_frees_its_thread(
    server: LiveServer, client: httpx.AsyncClient, alice: UserHandle
) -> None:
    services = server.app.state.services
    timeout = services.settings.run_queue_timeout
    run = await queued_run(alice, age=timeout + 5)
    young = await queued_run(alice, age=timeout - 60)
    await reaper.fail_unstarted(services)  # (the session server's own reaper may have been first: same outcome)
    await run.refresh_from_db()
    await young.refresh_from_db()
    assert run.status == "failed" and "RUNPLANE_RUN_QUEUE_TIMEOUT" in (run.error or "")
    assert run.active_thread_id is None and run.completed_at is not None
    assert young.status == "queued"
    events = (await client.get(f"/api/agent-run/{run.id}/events", headers=alice.headers)).json()
    frames = events if isinstance(events, list) else events.get("events", events)
    assert [e["type"] for e in frames][-2:] == ["error", "status"]
    # The thread takes a new run (no 409), and the failed run reserves no tokens any more (it is not active).
    thread_id = run.thread_id  # type: ignore[attr-defined]
    again = await client.post(f"/api/thread/{thread_id}/agent/start", json={}, headers=alice.headers)
    assert again.status_code == 200, again.text
    await lifecycle.finish(services, young.id, "stopped", from_statuses=("queued",))


async def test_jobs_of_ended_runs_are_dropped_and_never_reported_as_queued(
    server: LiveServer, alice: UserHandle, queue: ArqDispatcher
) -> None:
    services = server.app.state.services
    live, dead = await queued_run(alice), await queued_run(alice)
    for run in (live, dead):
        await queue.submit(run.id)
    pool = await queue._connection()
    await pool.set(in_progress_key_prefix + job_id(dead.id), b"1")  # its worker was SIGKILLed mid-run
    await lifecycle.finish(services, dead.id, "failed", error="reaped", from_statuses=("queued",))
    report = await _arq_jobs(queue)
    assert report["queued_jobs"] == 1 and report["stale_jobs"] == 1
    assert await reaper.forget_ended_jobs(queue) == 1
    assert await queue.queued_run_ids() == [live.id]
    assert not await pool.exists(in_progress_key_prefix + job_id(dead.id), job_key_prefix + job_id(dead.id))
    assert (await _arq_jobs(queue))["stale_jobs"] == 0 and await pool.zcard(ARQ_QUEUE) == 1
    await lifecycle.finish(services, live.id, "stopped", from_statuses=("queued",))
