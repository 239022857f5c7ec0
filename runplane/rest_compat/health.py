from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from runplane.resolvers import health as ops
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.common import ok
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import DEEP_HEALTH, HEALTH

TAG = "health"


@api.add("GET", "/health", "Basic health check", auth="public", tag=TAG, response=HEALTH)
async def health(request: Request, ctx: RequestContext) -> Response:
    return ok(ops.basic(ctx))


@api.add(
    "GET",
    "/health/deep",
    "Check every component; 503 when a critical one is down",
    auth="public",
    tag=TAG,
    response=DEEP_HEALTH,
)
async def deep(request: Request, ctx: RequestContext) -> Response:
    healthy, report = await ops.deep(ctx)
    return ok(report, status=200 if healthy else 503)


@api.add(
    "GET",
    "/health/ready",
    "Readiness probe: 503 until the database (and Redis) answer",
    auth="public",
    tag=TAG,
    response=HEALTH,
)
async def ready(request: Request, ctx: RequestContext) -> Response:
    is_ready = await ops.ready(ctx)
    return ok({**ops.basic(ctx), "status": "ready" if is_ready else "not_ready"}, status=200 if is_ready else 503)


@api.add("GET", "/health/live", "Liveness probe: the process answers", auth="public", tag=TAG, response=HEALTH)
async def live(request: Request, ctx: RequestContext) -> Response:
    return ok({**ops.basic(ctx), "status": "alive"})
