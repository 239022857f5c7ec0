"""`runplane worker`: an arq worker that executes runs queued by any API process."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from arq import Worker
from arq.connections import RedisSettings

from runplane.agents.dispatch import ARQ_FUNCTION, ARQ_QUEUE, worker_identity
from runplane.agents.reaper import Reaper
from runplane.config import Settings
from runplane.db import close_database, open_database
from runplane.services import Services

log = logging.getLogger("runplane.worker")


async def _execute_job(job_ctx: dict[str, Any], run_id: str) -> None:
    from runplane.agents.executor import execute_run

    services: Services = job_ctx["services"]
    await execute_run(services, uuid.UUID(run_id), job_ctx["worker_id"])


_execute_job.__qualname__ = ARQ_FUNCTION
_execute_job.__name__ = ARQ_FUNCTION


def build_worker(settings: Settings) -> Worker:
    if not settings.redis_url:
        raise SystemExit("runplane worker needs RUNPLANE_REDIS_URL (the job queue lives in Redis)")
    worker_ctx: dict[str, Any] = {}

    async def startup(ctx: dict[str, Any]) -> None:
        await open_database(settings)
        services = Services.build(settings)
        await services.start(run_dispatch=False)
        ctx["services"] = services
        ctx["worker_id"] = worker_identity(settings.instance_id)
        ctx["reaper"] = Reaper(services)
        ctx["reaper"].start()

    async def shutdown(ctx: dict[str, Any]) -> None:
        if "reaper" in ctx:
            await ctx["reaper"].stop()
        if "services" in ctx:
            await ctx["services"].close()
        await close_database()

    return Worker(
        functions=[_execute_job],
        queue_name=ARQ_QUEUE,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=settings.max_concurrent_runs,
        job_timeout=6 * 3600,
        poll_delay=0.05,  # start latency: arq polls its queue
        max_tries=3,
        keep_result=60,
        ctx=worker_ctx,
        handle_signals=True,
    )


def run_worker(settings: Settings) -> None:
    worker = build_worker(settings)
    worker.run()
