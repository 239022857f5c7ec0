"""Health: liveness is the process answering; readiness and deep health check PostgreSQL/SQLite and Redis."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

from tortoise import connections

from runplane.resolvers.context import RequestContext

CHECK_TIMEOUT_SECONDS = 2.0


def basic(ctx: RequestContext) -> dict[str, Any]:
    return {"status": "ok", "timestamp": _now(), "instance_id": ctx.settings.instance_id}


async def deep(ctx: RequestContext) -> tuple[bool, dict[str, Any]]:
    """(healthy, report). The database is always critical; Redis is critical when configured."""
    components: dict[str, Any] = {"database": await _timed(_ping_database())}
    if ctx.services.redis is not None:
        components["redis"] = await _timed(_ping_redis(ctx))
    else:
        components["redis"] = {"status": "not_configured", "critical": False}
    components["database"]["critical"] = True
    components["redis"].setdefault("critical", True)
    healthy = all(c["status"] in {"ok", "not_configured"} for c in components.values() if c["critical"])
    report = {**basic(ctx), "status": "healthy" if healthy else "unhealthy", "components": components}
    return healthy, report


async def ready(ctx: RequestContext) -> bool:
    healthy, _ = await deep(ctx)
    return healthy


async def _ping_database() -> None:
    await connections.get("default").execute_query("SELECT 1")


async def _ping_redis(ctx: RequestContext) -> None:
    assert ctx.services.redis is not None
    await ctx.services.redis.ping()


async def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check, CHECK_TIMEOUT_SECONDS)
        status, error = "ok", None
    except Exception as exc:  # any failure of a dependency is a health answer, not a crash
        status, error = "down", f"{type(exc).__name__}: {exc}"[:300]
    result: dict[str, Any] = {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}
    if error:
        result["error"] = error
    return result


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
