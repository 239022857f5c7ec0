"""Run queue introspection (served at /api/inngest, where cheatcode had its job runner's endpoint)."""

from __future__ import annotations

from typing import Any

from runplane.models import AgentRun
from runplane.resolvers.context import RequestContext
from runplane.statuses import ACTIVE_STATUSES


async def queue_info(ctx: RequestContext) -> dict[str, Any]:
    """Admin only: the backend, run counts by state from the database, and arq's own queue when it is used."""
    ctx.require_admin()
    settings = ctx.settings
    info: dict[str, Any] = {
        "backend": "arq" if settings.uses_job_queue else "inprocess",
        "database": {status: await AgentRun.filter(status=status).count() for status in ACTIVE_STATUSES},
        "max_concurrent_runs": settings.max_concurrent_runs,
    }
    dispatcher = ctx.services.dispatcher
    if hasattr(dispatcher, "queue_info"):
        try:
            info["arq"] = await dispatcher.queue_info()
        except Exception as exc:
            info["arq"] = {"backend": "arq", "error": f"{type(exc).__name__}: queue unreachable"}
    else:
        info["in_process_tasks"] = len(getattr(dispatcher, "tasks", ()))
    return info
