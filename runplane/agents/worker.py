"""`runplane worker`: an arq worker that executes runs queued by any API process.

It rides out Redis outages: a failed queue poll is logged once per outage and retried with a backoff (0.1 s
doubling to 5 s), a Redis that is down at start-up is waited for, and shutdown does not fail when Redis is
gone. It exits only when told to (SIGTERM/SIGINT). Every few seconds it writes its health (last successful
poll, runs executing) to the database (`WorkerBeat`), shown by /api/health/deep. It also runs the reaper and
the outbox relay, so queued runs reach Redis again after an outage even with no API process up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from arq import Worker
from arq.connections import RedisSettings
from arq.worker import func

from runplane.agents.dispatch import ARQ_FUNCTION, ARQ_QUEUE, ArqDispatcher, worker_identity
from runplane.agents.executor import execute_run
from runplane.agents.outbox import OutboxRelay
from runplane.agents.reaper import Reaper
from runplane.clock import now
from runplane.config import Settings
from runplane.db import close_database, open_database
from runplane.models import WorkerBeat
from runplane.periodic import Periodic
from runplane.services import Services

log = logging.getLogger("runplane.worker")
BACKOFF_FIRST, BACKOFF_MAX = 0.1, 5.0
FORGET_AFTER = timedelta(minutes=10)  # beat rows of workers silent this long are removed


async def _execute_job(job_ctx: dict[str, Any], run_id: str) -> None:
    services: Services = job_ctx["services"]
    await execute_run(services, uuid.UUID(run_id), job_ctx["worker_id"])


class ResilientWorker(Worker):
    """arq's Worker, minus the exits on a Redis blip (arq lets a failed poll end `main`)."""

    started_at: datetime
    last_poll_at: datetime | None = None
    redis_ok = True
    _backoff = BACKOFF_FIRST

    async def main(self) -> None:
        while True:  # cancelled by the signal handler: CancelledError is not an Exception
            try:
                await super().main()
                return
            except Exception as exc:
                await self._wait_for_redis("start-up", exc)

    async def _poll_iteration(self) -> None:
        try:
            await super()._poll_iteration()
        except Exception as exc:
            await self._wait_for_redis("queue poll", exc)
            return
        self.last_poll_at = now()
        if not self.redis_ok:
            log.warning("worker reconnected to Redis; polling the queue again")
        self.redis_ok, self._backoff = True, BACKOFF_FIRST

    async def _wait_for_redis(self, what: str, exc: Exception) -> None:
        if self.redis_ok:  # one warning per outage, not one per retry
            log.warning("worker %s failed (%s: %s); retrying with backoff", what, type(exc).__name__, exc)
        self.redis_ok = False
        await asyncio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    async def close(self) -> None:
        """arq's close, except that a Redis that is down does not skip our shutdown (database, services)."""
        if not self._pool:
            return
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.pool.delete(self.health_check_key)
        if self.on_shutdown:
            await self.on_shutdown(self.ctx)
        with contextlib.suppress(Exception):
            await self.pool.close(close_connection_pool=True)
        self._pool = None

    @property
    def running(self) -> int:
        return sum(not task.done() for task in self.tasks.values())


async def beat(worker: ResilientWorker, worker_id: str) -> None:
    """Write this worker's health row (and drop rows of workers long gone)."""
    values: dict[str, Any] = dict(
        beat_at=now(), last_poll_at=worker.last_poll_at, running=worker.running, redis_ok=worker.redis_ok
    )
    if not await WorkerBeat.filter(worker_id=worker_id).update(**values):
        await WorkerBeat.create(worker_id=worker_id, started_at=worker.started_at, **values)
    await WorkerBeat.filter(beat_at__lt=now() - FORGET_AFTER).delete()


def build_worker(settings: Settings) -> ResilientWorker:
    if not settings.redis_url:
        raise SystemExit("runplane worker needs RUNPLANE_REDIS_URL (the job queue lives in Redis)")
    worker_id = worker_identity(settings.instance_id)

    async def startup(ctx: dict[str, Any]) -> None:
        if "services" in ctx:  # main() ran again after a failed start: the process is set up already
            return
        await open_database(settings)
        services = Services.build(settings)
        await services.start()  # no dispatcher: a worker executes runs, the API process starts them
        queue = ArqDispatcher(settings.redis_url or "")
        worker = ctx["worker"]
        passes = [
            Reaper(services, queue),
            OutboxRelay(queue, worker_id, settings.outbox_interval_seconds),
            Periodic("worker beat", settings.worker_beat_seconds, lambda: beat(worker, worker_id), log),
        ]
        ctx.update(services=services, worker_id=worker_id, queue=queue, passes=passes)
        for task in passes:
            task.start()
        await beat(worker, worker_id)

    async def shutdown(ctx: dict[str, Any]) -> None:
        for task in ctx.get("passes", ()):
            await task.stop()
        if "queue" in ctx:
            await ctx["queue"].close()
        if "services" in ctx:
            await ctx["services"].close()
            with contextlib.suppress(Exception):
                await WorkerBeat.filter(worker_id=worker_id).delete()
        await close_database()

    worker = ResilientWorker(
        # arq's WorkerCoroutine Protocol takes (ctx, *args, **kwargs): no job with named parameters matches it.
        functions=[func(_execute_job, name=ARQ_FUNCTION)],  # type: ignore[arg-type]
        queue_name=ARQ_QUEUE,
        redis_settings=RedisSettings.from_dsn(settings.redis_url),
        on_startup=startup,
        on_shutdown=shutdown,
        max_jobs=settings.max_concurrent_runs,
        job_timeout=6 * 3600,
        poll_delay=0.05,  # start latency: arq polls its queue
        max_tries=3,
        keep_result=60,
        handle_signals=True,
    )
    worker.started_at = now()
    worker.ctx["worker"] = worker  # arq's own dict (it replaces an empty one we pass)
    return worker


def run_worker(settings: Settings) -> None:
    worker = build_worker(settings)
    worker.run()
