"""create_app(settings) -> Starlette: /graphql (HTTP, WebSocket) and /api, with our lifespan."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from runplane import rest_compat
from runplane.agents.dispatch import ArqDispatcher, make_dispatcher, worker_identity
from runplane.agents.outbox import OutboxRelay
from runplane.agents.reaper import Reaper, resubmit_orphaned_runs
from runplane.config import Settings
from runplane.connection import ConnectionMiddleware
from runplane.db import close_database, open_database
from runplane.db_errors import CANDIDATE_TYPES, database_unavailable, describe
from runplane.errors import DomainError
from runplane.graphql_view import RunplaneGraphQL
from runplane.http_protocol import redact_access_log
from runplane.middleware import BodyLimitMiddleware, RequestIdMiddleware
from runplane.origins import UntrustedOriginMiddleware
from runplane.rest_compat import preview
from runplane.rest_compat.common import error_response
from runplane.rest_compat.deployments import site_routes
from runplane.rest_compat.dialect import speaks_cheatcode
from runplane.rest_compat.sandboxes import body_limit
from runplane.sandboxes.service import SandboxReaper
from runplane.schema import build_schema
from runplane.services import Services

log = logging.getLogger("runplane")


def create_app(settings: Settings | None = None, *, apply_migrations: bool = True) -> Starlette:
    settings = (settings or Settings.from_env()).resolved()
    redact_access_log()  # `?token=` of SSE URLs and preview tokens never reach uvicorn's access log
    services = Services.build(settings)
    graphql = RunplaneGraphQL(build_schema(settings), services)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await open_database(settings, apply_migrations=apply_migrations)
        await services.start(dispatcher=make_dispatcher)
        queue = services.dispatcher if isinstance(services.dispatcher, ArqDispatcher) else None
        reaper = Reaper(services, queue)
        reaper.start()
        relay = OutboxRelay(
            services.dispatcher, worker_identity(settings.instance_id), settings.outbox_interval_seconds
        )
        if queue is not None:  # an in-process queue writes no outbox rows (it cannot be down)
            relay.start()  # pushes runs queued while Redis was away
        await services.sandboxes.guard_network()  # iptables rules keeping sandboxes off this host's services
        sandbox_reaper = SandboxReaper(services.sandboxes)  # stops idle sandboxes; the backend closes with services
        sandbox_reaper.start()
        await resubmit_orphaned_runs(services)
        # Start-up objects (modules, the schema, compiled types) live as long as the process: out of the
        # collector's way, they are not scanned again by every full collection (less CPU per request).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await reaper.stop()
            await relay.stop()
            await sandbox_reaper.stop()
            await services.close()
            await close_database()

    app = Starlette(
        routes=_routes(graphql),
        middleware=_middleware(services),
        exception_handlers={
            DomainError: _domain_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
            **{kind: _database_error for kind in CANDIDATE_TYPES},
        },
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.graphql = graphql
    return app


def _routes(graphql: RunplaneGraphQL) -> list[BaseRoute]:
    return [
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *rest_compat.routes(),
        *preview.routes(),
        *site_routes(),  # local static deployments: /sites/<deployment id>/...
        # GraphiQL's and the API docs' assets, shipped in the package (no CDN): /static/vendor/<package>/<file>
        Mount("/static", StaticFiles(directory=Path(__file__).with_name("static")), name="static"),
    ]


# Browsers hide response headers from scripts unless listed: clients back off by Retry-After and report X-Request-Id.
EXPOSED_HEADERS = ["Retry-After", "X-Request-Id"]


def _middleware(services: Services) -> list[Middleware]:
    settings = services.settings
    stack = [
        # Sites and previews answer only on their own listener, with their security headers (runplane/origins.py).
        Middleware(UntrustedOriginMiddleware, settings=settings),
        Middleware(RequestIdMiddleware),
        # Stream slots and credentials per connection: no exit path keeps a slot, no socket outlives its token.
        Middleware(ConnectionMiddleware, leases=services.leases, credentials=services.credentials),
        Middleware(BodyLimitMiddleware, limit_for=lambda path: body_limit(settings, path)),
    ]
    if settings.cors_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(settings.cors_origins),
                allow_headers=["*"],
                allow_methods=["*"],
                expose_headers=EXPOSED_HEADERS,
            )
        )
    return stack


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return error_response(exc, cheatcode=request.url.path.startswith("/api/") and speaks_cheatcode(request))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _database_error(request: Request, exc: Exception) -> Response:
    """The database out of reach: 503 with Retry-After, the detail (host, port) only in the log. Anything else of
    these types (an SQL error, a file error) goes on to _unexpected_error."""
    unavailable = database_unavailable(exc)
    if unavailable is None:
        raise exc
    request_id = getattr(request.state, "request_id", "-")
    log.warning(
        "database unavailable (request_id=%s) %s %s: %s", request_id, request.method, request.url.path, describe(exc)
    )
    return error_response(unavailable)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    request_id = getattr(request.state, "request_id", "-")
    log.error("unhandled error (request_id=%s) %s %s", request_id, request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "Internal server error", "request_id": request_id}, status_code=500)
