"""Where runs execute: in this process (embedded default) or through the arq job queue on Redis,
where any `runplane worker` process (on any machine) picks them up."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING

from runplane.agents.executor import execute_run
from runplane.services import RunDispatcher, Services

if TYPE_CHECKING:
    from arq.connections import ArqRedis

log = logging.getLogger("runplane.dispatch")
ARQ_QUEUE = "runplane:runs"
ARQ_FUNCTION = "execute_run"


def worker_identity(instance_id: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{instance_id}"


class InProcessDispatcher:
    """Runs as asyncio tasks of this process, at most `max_concurrent` at once (others wait queued)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.slots = asyncio.Semaphore(services.settings.max_concurrent_runs)
        self.tasks: set[asyncio.Task[None]] = set()
        self.worker_id = worker_identity(services.settings.instance_id)

    async def submit(self, run_id: uuid.UUID) -> None:
        task = asyncio.create_task(self._execute(run_id), name=f"run-{run_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _execute(self, run_id: uuid.UUID) -> None:
        async with self.slots:
            try:
                await execute_run(self.services, run_id, self.worker_id)
            except Exception:
                log.exception("executor crashed on run %s", run_id)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


class ArqDispatcher:
    """Enqueues on arq; the job id is the run id, so a retried start never queues a run twice. Redis is a fast
    path: the run outbox (runplane/agents/outbox.py) holds what could not be pushed, and `ensure_queued` puts
    back a job Redis lost."""

    def __init__(self, redis_url: str, *, timeout: float = 2.0) -> None:
        self.redis_url = redis_url
        # Every call is bounded: a Redis that accepts and never answers (a partition) must not hang a request or
        # the reaper. After a failed push, pushes fail at once for a moment (the outbox keeps the runs).
        self.timeout = timeout
        self._pool: "ArqRedis | None" = None
        self._down_until = 0.0

    async def _connection(self) -> "ArqRedis":
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            # Fail fast (no connect retries): a caller with a run to push keeps it in the outbox instead.
            redis = RedisSettings.from_dsn(self.redis_url)
            redis.conn_retries, redis.conn_timeout = 0, max(1, int(self.timeout))
            self._pool = await create_pool(redis, default_queue_name=ARQ_QUEUE)
        return self._pool

    async def submit(self, run_id: uuid.UUID) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self._down_until:
            raise QueueUnavailable("the job queue did not answer a moment ago")
        try:
            async with asyncio.timeout(self.timeout):
                pool = await self._connection()
                await pool.enqueue_job(ARQ_FUNCTION, str(run_id), _job_id=job_id(run_id))
        except Exception:
            self._down_until = loop.time() + QUIET_AFTER_FAILURE
            raise

    async def ensure_queued(self, run_id: uuid.UUID) -> bool:
        """For a run the database says is still queued, long after it was pushed: make arq hold a job that a
        worker will pick up. True when it had to be pushed again (Redis lost it, or a dead worker left its
        in-progress key behind). Racing a worker that is claiming it right now is harmless: claim is atomic."""
        from arq.constants import in_progress_key_prefix, job_key_prefix

        job = job_id(run_id)
        async with asyncio.timeout(self.timeout):
            pool = await self._connection()
            async with pool.pipeline(transaction=False) as pipe:
                pipe.exists(job_key_prefix + job)
                pipe.zscore(ARQ_QUEUE, job)
                pipe.exists(in_progress_key_prefix + job)
                has_job, score, in_progress = await pipe.execute()
        if has_job and score is not None and not in_progress:
            return False  # waiting for a free worker
        await self.forget([run_id])
        await self.submit(run_id)
        return True

    async def queued_run_ids(self, limit: int | None = None) -> list[uuid.UUID]:
        """The runs of the jobs in arq's queue, oldest first (waiting, or taken by a worker that has not
        finished them); the first `limit` of them when given."""
        async with asyncio.timeout(self.timeout):
            pool = await self._connection()
            raws = await pool.zrange(ARQ_QUEUE, 0, -1 if limit is None else limit - 1)
        return [run for raw in raws if (run := run_of_job(raw)) is not None]

    async def forget(self, run_ids: list[uuid.UUID]) -> None:
        """Remove every trace of the runs' jobs from arq (the runs ended, or their job is pushed again)."""
        from arq.constants import in_progress_key_prefix, job_key_prefix, result_key_prefix, retry_key_prefix

        if not run_ids:
            return
        jobs = [job_id(r) for r in run_ids]
        prefixes = (job_key_prefix, in_progress_key_prefix, result_key_prefix, retry_key_prefix)
        async with asyncio.timeout(self.timeout):
            pool = await self._connection()
            await pool.delete(*(prefix + job for job in jobs for prefix in prefixes))
            await pool.zrem(ARQ_QUEUE, *jobs)

    def queue_info(self) -> dict[str, object]:
        """What /api/inngest says of arq itself (its jobs are counted against the database by the resolver)."""
        return {"backend": "arq", "queue": ARQ_QUEUE}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


QUIET_AFTER_FAILURE = 1.0  # seconds during which pushes fail at once after one failed


class QueueUnavailable(Exception):
    """The job queue (Redis) cannot take a job now; the run stays in the outbox."""


JOB_PREFIX = "run:"


def job_id(run_id: uuid.UUID) -> str:
    return f"{JOB_PREFIX}{run_id}"


def run_of_job(raw: bytes | str) -> uuid.UUID | None:
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        return uuid.UUID(text.removeprefix(JOB_PREFIX))
    except ValueError:
        return None


def make_dispatcher(services: Services) -> RunDispatcher:
    """The run dispatcher of a process that starts runs (Services.start(dispatcher=make_dispatcher)): arq when the
    run queue is (RUNPLANE_RUN_QUEUE=arq), else this process's own executor."""
    settings = services.settings
    if settings.uses_job_queue:
        assert settings.redis_url, "RUNPLANE_RUN_QUEUE=arq needs RUNPLANE_REDIS_URL"
        return ArqDispatcher(settings.redis_url)
    return InProcessDispatcher(services)
