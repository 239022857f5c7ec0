"""The run state machine's functions called directly on runs put in each state by tests/factories.py: claim,
pause and resume, finish (charge and status in one step, once), the reaper's two rules. No agent runs, no chunk
delays, no polling; the end-to-end tests in this directory cover the transports."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tortoise.exceptions import IntegrityError

from runplane.agents import lifecycle, reaper
from runplane.events.log import replay
from runplane.models import AgentRun, BillingSubscription, UsageEntry
from runplane.services import Services
from runplane.statuses import RunStatus
from tests.factories import FACTORY_WORKER, age, create_run, create_thread, expire_lease
from tests.support import LiveServer


@pytest.fixture
def services(server: LiveServer) -> Services:
    found: Services = server.app.state.services
    return found


async def statuses(run: AgentRun) -> list[str]:
    return [e.payload["status"] for e in await replay(run.id, 0) if e.type == "status"]


async def test_claim_moves_a_queued_run_once(services: Services) -> None:
    run = await create_run(RunStatus.QUEUED)
    events = await lifecycle.claim(run.id, "worker-a", lease_seconds=60)
    assert [e.payload["status"] for e in events] == ["running"] and events[0].sequence == 2
    assert await lifecycle.claim(run.id, "worker-b", lease_seconds=60) == []  # the second claimer gets nothing
    await run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.worker_id == "worker-a" and run.lease_expires_at is not None


@pytest.mark.parametrize("status", [RunStatus.PAUSED, RunStatus.COMPLETED, RunStatus.STOPPED])
async def test_only_a_queued_run_is_claimed(services: Services, status: RunStatus) -> None:
    run = await create_run(status)
    assert await lifecycle.claim(run.id, "worker-a", lease_seconds=60) == []
    await run.refresh_from_db()
    assert run.status == status


async def test_pause_and_resume(services: Services) -> None:
    run = await create_run(RunStatus.RUNNING)
    paused = await lifecycle.transition(run.id, from_statuses=(RunStatus.RUNNING,), to=RunStatus.PAUSED)
    assert [e.payload["status"] for e in paused] == ["paused"]
    assert await lifecycle.transition(run.id, from_statuses=(RunStatus.RUNNING,), to=RunStatus.PAUSED) == []
    resumed = await lifecycle.transition(run.id, from_statuses=(RunStatus.PAUSED,), to=RunStatus.RUNNING)
    assert [e.payload["status"] for e in resumed] == ["running"]
    await run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.active_thread_id == run.thread_id  # still holds its thread
    assert await statuses(run) == ["running", "paused", "running"]


async def test_finish_charges_and_ends_once(services: Services) -> None:
    run = await create_run(RunStatus.RUNNING)
    tokens = dict(prompt_tokens=70, completion_tokens=30, total_tokens=100)
    assert await lifecycle.finish(services, run.id, RunStatus.COMPLETED, **tokens) is True
    await run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.total_tokens == 100
    assert run.active_thread_id is None and run.lease_expires_at is None and run.completed_at is not None
    entry = await UsageEntry.get(run_id=run.id)
    assert entry.total_tokens == 100 and entry.source == "platform"
    used = (await BillingSubscription.get(user_id=run.owner_id)).tokens_used
    # Ending it again (a slow worker after the reaper) changes nothing and charges nothing more.
    assert await lifecycle.finish(services, run.id, RunStatus.FAILED, error="late", **tokens) is False
    await run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.error is None
    assert await UsageEntry.filter(run_id=run.id).count() == 1
    assert (await BillingSubscription.get(user_id=run.owner_id)).tokens_used == used
    assert await statuses(run) == ["running", "completed"]


async def test_a_failed_run_logs_its_error_before_its_status(services: Services) -> None:
    run = await create_run(RunStatus.PAUSED)
    assert await lifecycle.finish(services, run.id, RunStatus.FAILED, error="model provider error") is True
    events = (await replay(run.id, 0))[-2:]
    assert [e.type for e in events] == ["error", "status"]
    assert events[1].payload == {"status": "failed", "error": "model provider error"}


async def test_stopping_a_queued_run_does_not_touch_a_running_one(services: Services) -> None:
    queued, running = await create_run(RunStatus.QUEUED), await create_run(RunStatus.RUNNING)
    only_queued = (RunStatus.QUEUED,)
    assert await lifecycle.finish(services, queued.id, RunStatus.STOPPED, from_statuses=only_queued) is True
    assert await lifecycle.finish(services, running.id, RunStatus.STOPPED, from_statuses=only_queued) is False
    await queued.refresh_from_db()
    await running.refresh_from_db()
    assert queued.status == RunStatus.STOPPED and running.status == RunStatus.RUNNING


async def test_one_active_run_per_thread(services: Services) -> None:
    """The database itself refuses a second active run on a thread; an ended run frees it."""
    thread = await create_thread()
    first = await create_run(RunStatus.RUNNING, thread=thread)
    with pytest.raises(IntegrityError):
        await create_run(RunStatus.QUEUED, thread=thread, log=False)
    await lifecycle.finish(services, first.id, RunStatus.COMPLETED)
    assert (await create_run(RunStatus.QUEUED, thread=thread)).active_thread_id == thread.id


# The session server's own reaper may end these runs first: the assertions are on the end state and on the log
# (each run ended once), never on which reaper won.


@pytest.mark.parametrize(("stop_requested", "ends_as"), [(False, RunStatus.FAILED), (True, RunStatus.STOPPED)])
async def test_the_reaper_ends_runs_whose_worker_died(
    services: Services, stop_requested: bool, ends_as: RunStatus
) -> None:
    run = await create_run(RunStatus.RUNNING, stop_requested=stop_requested)
    alive = await create_run(RunStatus.RUNNING)  # its lease runs: not touched
    await expire_lease(run)
    await reaper.reap_expired_leases(services)
    await run.refresh_from_db()
    await alive.refresh_from_db()
    assert run.status == ends_as and alive.status == RunStatus.RUNNING and alive.worker_id == FACTORY_WORKER
    assert await statuses(run) == ["running", ends_as]
    if ends_as == RunStatus.FAILED:
        assert run.error == "The worker executing this run stopped responding"


async def test_the_reaper_fails_runs_no_worker_started(services: Services) -> None:
    timeout = services.settings.run_queue_timeout
    stale, fresh = await create_run(RunStatus.QUEUED), await create_run(RunStatus.QUEUED)
    await age(stale, timedelta(seconds=timeout + 5))
    await reaper.fail_unstarted(services)
    await stale.refresh_from_db()
    await fresh.refresh_from_db()
    assert stale.status == RunStatus.FAILED and "RUNPLANE_RUN_QUEUE_TIMEOUT" in (stale.error or "")
    assert fresh.status == RunStatus.QUEUED
    assert await statuses(stale) == ["queued", "failed"]
