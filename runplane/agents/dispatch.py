"""Where runs execute: in this process (embedded default) or through the arq job queue on Redis,
where any `runplane worker` process (on any machine) picks them up."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from runplane.services import Services

log = logging.getLogger("runplane.dispatch")
ARQ_QUEUE = "runplane:runs"
ARQ_FUNCTION = "execute_run"


def worker_identity(instance_id: str) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{instance_id}"


class RunDispatcher(Protocol):
    async def submit(self, run_id: uuid.UUID) -> None: ...

    async def close(self) -> None: ...


class InProcessDispatcher:
    """Runs as asyncio tasks of this process, at most `max_concurrent` at once (others wait queued)."""

    def __init__(self, services: "Services") -> None:
        self.services = services
        self.slots = asyncio.Semaphore(services.settings.max_concurrent_runs)
        self.tasks: set[asyncio.Task[None]] = set()
        self.worker_id = worker_identity(services.settings.instance_id)

    async def submit(self, run_id: uuid.UUID) -> None:
        task = asyncio.create_task(self._execute(run_id), name=f"run-{run_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _execute(self, run_id: uuid.UUID) -> None:
        from runplane.agents.executor import execute_run

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
    """Enqueues on arq; the job id is the run id, so a retried start never queues a run twice."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._pool: "ArqRedis | None" = None

    async def _connection(self) -> "ArqRedis":
        if self._pool is None:
            from arq import create_pool
            from arq.connections import RedisSettings

            self._pool = await create_pool(RedisSettings.from_dsn(self.redis_url), default_queue_name=ARQ_QUEUE)
        return self._pool

    async def submit(self, run_id: uuid.UUID) -> None:
        pool = await self._connection()
        await pool.enqueue_job(ARQ_FUNCTION, str(run_id), _job_id=f"run:{run_id}")

    async def queue_info(self) -> dict[str, object]:
        """Introspection of the run queue (served at /api/inngest)."""
        pool = await self._connection()
        queued = await pool.zcard(ARQ_QUEUE)
        return {"backend": "arq", "queue": ARQ_QUEUE, "queued_jobs": int(queued)}

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
