"""The reaper: every run ends. One pass (in every API process and worker; conditional updates make that safe):

- running/paused runs whose worker stopped renewing its lease are failed with an ERROR event (or reach
  "stopped" when a stop was asked for);
- queued runs no worker started within RUNPLANE_RUN_QUEUE_TIMEOUT are failed with a clear error, which frees
  their thread and their token reservation;
- with the arq queue: queued runs pushed long ago (RUNPLANE_RUN_REQUEUE_SECONDS) are checked in Redis and pushed
  again if Redis lost their job, and jobs of runs that already ended are dropped from arq (a SIGKILLed worker's
  in-progress key would otherwise keep them listed for hours).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import cast

from tortoise.expressions import Subquery
from tortoise.queryset import QuerySet

from runplane.agents import lifecycle
from runplane.agents.dispatch import ArqDispatcher
from runplane.clock import now
from runplane.models import AgentRun, RunOutbox
from runplane.periodic import Periodic
from runplane.services import Services
from runplane.statuses import EXECUTING_STATUSES, TERMINAL_STATUSES, RunStatus

log = logging.getLogger("runplane.reaper")
BATCH = 200


class Reaper(Periodic):
    def __init__(self, services: Services, queue: ArqDispatcher | None = None) -> None:
        super().__init__("reaper", services.settings.reaper_interval_seconds, lambda: reap_once(services, queue), log)


async def reap_once(services: Services, queue: ArqDispatcher | None = None) -> int:
    """One pass; returns how many runs it ended."""
    ended = await reap_expired_leases(services) + await fail_unstarted(services)
    if queue is not None:
        await requeue_lost(services, queue)
        await forget_ended_jobs(queue)
    return ended


async def reap_expired_leases(services: Services) -> int:
    expired = await AgentRun.filter(status__in=EXECUTING_STATUSES, lease_expires_at__lt=now()).values_list(
        "id", "stop_requested"
    )
    ended = 0
    for run_id, stop_requested in expired:
        if stop_requested:
            ended += await lifecycle.finish(services, run_id, RunStatus.STOPPED)
        else:
            ended += await lifecycle.finish(
                services, run_id, RunStatus.FAILED, error="The worker executing this run stopped responding"
            )
    if ended:
        log.warning("reaper ended %d run(s) of dead workers", ended)
    return ended


async def run_ids(query: QuerySet[AgentRun]) -> list[uuid.UUID]:
    """The ids of the runs the query selects (Tortoise types values_list(flat=True) as tuples, field count aside)."""
    return cast(list[uuid.UUID], await query.values_list("id", flat=True))


async def fail_unstarted(services: Services) -> int:
    timeout = services.settings.run_queue_timeout
    cutoff = now() - timedelta(seconds=timeout)
    query = AgentRun.filter(status=RunStatus.QUEUED, created_at__lt=cutoff).limit(BATCH)
    stale = await run_ids(query)
    error = f"No worker started this run within {timeout} s (RUNPLANE_RUN_QUEUE_TIMEOUT): try again"
    ended = 0
    for run_id in stale:
        ended += await lifecycle.finish(
            services, run_id, RunStatus.FAILED, error=error, from_statuses=(RunStatus.QUEUED,)
        )
    if ended:
        log.warning("reaper failed %d run(s) that no worker started", ended)
    return ended


async def requeue_lost(services: Services, queue: ArqDispatcher) -> int:
    """Queued runs that left the outbox long ago: make sure arq still has their job."""
    cutoff = now() - timedelta(seconds=services.settings.run_requeue_seconds)
    in_outbox = Subquery(RunOutbox.all().values("run_id"))
    stale = await run_ids(
        AgentRun.filter(status=RunStatus.QUEUED, created_at__lt=cutoff)
        .exclude(id__in=in_outbox)  # still waiting for the relay: not lost, only not pushed yet
        .order_by("created_at")
        .limit(BATCH)
    )
    pushed = 0
    for run_id in stale:
        if await AgentRun.exists(id=run_id, status=RunStatus.QUEUED):  # a worker may have claimed it meanwhile
            pushed += await queue.ensure_queued(run_id)
    if pushed:
        log.warning("reaper pushed %d queued run(s) again: the job queue had lost them", pushed)
    return pushed


async def forget_ended_jobs(queue: ArqDispatcher) -> int:
    """Jobs whose runs ended or are gone are dropped from arq (a few thousand looked at per pass)."""
    queued = await queue.queued_run_ids(limit=BATCH * 10)
    if not queued:
        return 0
    ended = await run_ids(AgentRun.filter(id__in=queued, status__in=TERMINAL_STATUSES))
    gone = set(queued) - set(await run_ids(AgentRun.filter(id__in=queued)))
    stale = [*ended, *gone]
    await queue.forget(stale)
    return len(stale)


async def resubmit_orphaned_runs(services: Services) -> int:
    """In-process mode keeps its queue in memory: runs still queued at start-up (the previous process
    died before running them) are submitted again. With arq the outbox and `requeue_lost` cover this."""
    if services.settings.uses_job_queue:
        return 0
    queued = await run_ids(AgentRun.filter(status=RunStatus.QUEUED))
    for run_id in queued:
        await services.dispatcher.submit(run_id)
    return len(queued)
