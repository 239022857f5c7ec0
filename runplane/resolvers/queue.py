"""Run queue introspection (served at /api/inngest, where cheatcode had its job runner's endpoint)."""

from __future__ import annotations

from typing import Any

from runplane.agents.dispatch import ArqDispatcher
from runplane.models import AgentRun, RunOutbox
from runplane.resolvers.context import RequestContext
from runplane.statuses import ACTIVE_STATUSES


async def queue_info(ctx: RequestContext) -> dict[str, Any]:
    """Admin only: the backend, run counts by state from the database (the truth), the outbox, and arq's queue
    when it is used: its jobs counted against the database, so a job whose run already ended (a dead worker's
    leftover, dropped by the reaper's next pass) is reported as stale, never as queued work."""
    ctx.require_admin()
    settings = ctx.settings
    info: dict[str, Any] = {
        "backend": "arq" if settings.uses_job_queue else "inprocess",
        "database": {status: await AgentRun.filter(status=status).count() for status in ACTIVE_STATUSES},
        "outbox": await RunOutbox.all().count(),
        "max_concurrent_runs": settings.max_concurrent_runs,
    }
    dispatcher = ctx.services.dispatcher
    if isinstance(dispatcher, ArqDispatcher):
        try:
            info["arq"] = await _arq_jobs(dispatcher)
        except Exception as exc:
            info["arq"] = {"backend": "arq", "error": f"{type(exc).__name__}: queue unreachable"}
    else:
        info["in_process_tasks"] = len(getattr(dispatcher, "tasks", ()))
    return info


async def _arq_jobs(dispatcher: ArqDispatcher) -> dict[str, Any]:
    info = dispatcher.queue_info()
    run_ids = await dispatcher.queued_run_ids()
    live = await AgentRun.filter(id__in=run_ids, status__in=ACTIVE_STATUSES).count() if run_ids else 0
    return {**info, "queued_jobs": live, "stale_jobs": len(run_ids) - live}
