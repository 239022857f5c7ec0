"""Health: liveness is the process answering; readiness and deep health check PostgreSQL/SQLite and Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tortoise import connections

from runplane.clock import iso_now, now
from runplane.db_errors import database_unavailable, describe
from runplane.models import WorkerBeat
from runplane.resolvers.context import RequestContext

log = logging.getLogger("runplane.health")

CHECK_TIMEOUT_SECONDS = 2.0


def basic(ctx: RequestContext) -> dict[str, Any]:
    return {"status": "ok", "timestamp": iso_now(), "instance_id": ctx.settings.instance_id}


async def deep(ctx: RequestContext) -> tuple[bool, dict[str, Any]]:
    """(healthy, report). The database is always critical; Redis is critical when configured."""
    components: dict[str, Any] = {"database": await _timed("database", _ping_database())}
    if ctx.services.redis is not None:
        components["redis"] = await _timed("redis", _ping_redis(ctx))
    else:
        components["redis"] = {"status": "not_configured", "critical": False}
    components["database"]["critical"] = True
    components["redis"].setdefault("critical", True)
    if ctx.settings.uses_job_queue:
        components["workers"] = await _workers(ctx)
    healthy = all(c["status"] in {"ok", "not_configured"} for c in components.values() if c["critical"])
    report = {**basic(ctx), "status": "healthy" if healthy else "unhealthy", "components": components}
    return healthy, report


async def ready(ctx: RequestContext) -> bool:
    healthy, _ = await deep(ctx)
    return healthy


async def _workers(ctx: RequestContext) -> dict[str, Any]:
    """The `runplane worker` processes from their health rows (runplane/agents/worker.py): a worker is alive
    while it writes its row; its last successful queue poll says whether it can reach Redis. Not critical to
    this API process's readiness (runs wait in the queue), but `down` when no worker is alive."""
    try:
        rows = await asyncio.wait_for(WorkerBeat.all().order_by("worker_id"), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        return {"status": "down", "critical": False, "error": _reason(exc)}
    at = now()
    alive_within = 3 * ctx.settings.worker_beat_seconds + 1
    workers = [_worker(row, at, alive_within) for row in rows]
    alive = [w for w in workers if w["alive"]]
    return {
        "status": "ok" if alive else "down",
        "critical": False,
        "alive": len(alive),
        "running": sum(w["running"] for w in alive),
        "workers": workers,
    }


def _worker(row: WorkerBeat, at: datetime, alive_within: float) -> dict[str, Any]:
    def age(moment: datetime | None) -> float | None:
        return None if moment is None else round((at - moment).total_seconds(), 2)

    return {
        "id": row.worker_id.rsplit(":", 1)[-1],  # its instance id: host names and pids stay in the log
        "alive": (age(row.beat_at) or 0) < alive_within,
        "beat_age_s": age(row.beat_at),
        "last_poll_age_s": age(row.last_poll_at),
        "redis_ok": row.redis_ok,
        "running": row.running,
    }


async def _ping_database() -> None:
    await connections.get("default").execute_query("SELECT 1")


async def _ping_redis(ctx: RequestContext) -> None:
    assert ctx.services.redis is not None
    await ctx.services.redis.ping()


async def _timed(name: str, check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
        status, error = "ok", None
    except Exception as exc:  # any failure of a dependency is a health answer, not a crash
        # The probe is public: it says which dependency and why in general terms; hosts and ports go to the log.
        status, error = "down", _reason(exc)
        log.warning("health check: %s is down: %s", name, describe(exc))
    result: dict[str, Any] = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if error:
        result["error"] = error
    return result


def _reason(exc: Exception) -> str:
    if isinstance(exc, (TimeoutError, RedisTimeoutError)):
        return "timed out"
    if isinstance(exc, (OSError, RedisConnectionError)) or database_unavailable(exc) is not None:
        return "unreachable"
    return "check failed"
