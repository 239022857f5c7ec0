"""The reaper: no run stays "running" forever. Runs whose worker stopped renewing its lease are failed
with an ERROR event; runs stopped while nobody executed them reach "stopped"."""

from __future__ import annotations

import logging

from runplane.agents import lifecycle
from runplane.models import AgentRun
from runplane.periodic import Periodic
from runplane.services import Services
from runplane.statuses import EXECUTING_STATUSES, RunStatus

log = logging.getLogger("runplane.reaper")


class Reaper(Periodic):
    def __init__(self, services: Services) -> None:
        super().__init__("reaper", services.settings.reaper_interval_seconds, lambda: reap_once(services), log)


async def reap_once(services: Services) -> int:
    """One pass; returns how many runs it ended. Safe in every process at once (conditional updates)."""
    expired = await AgentRun.filter(status__in=EXECUTING_STATUSES, lease_expires_at__lt=lifecycle.now()).values_list(
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


async def resubmit_orphaned_runs(services: Services) -> int:
    """In-process mode keeps its queue in memory: runs still queued at start-up (the previous process
    died before running them) are submitted again. With arq the queue lives in Redis already."""
    if services.settings.uses_job_queue:
        return 0
    queued = await AgentRun.filter(status=RunStatus.QUEUED).values_list("id", flat=True)
    for run_id in queued:
        await services.dispatcher.submit(run_id)  # type: ignore[arg-type]
    return len(queued)
