"""The documented /api surface (Cheatcode's REST API, README "REST compatibility API"): parse -> resolvers -> JSON."""

from __future__ import annotations

from starlette.routing import Route

# Importing the modules registers their routes on `api`.
from runplane.rest_compat import (  # noqa: F401
    agent_runs,
    auth,
    billing,
    deployments,
    health,
    integrations,
    misc,
    projects,
    sandboxes,
    threads,
    webhooks,
)
from runplane.rest_compat.openapi import docs_page, openapi_endpoint
from runplane.rest_compat.registry import api


def routes() -> list[Route]:
    return [
        Route("/api/openapi.json", openapi_endpoint(api), methods=["GET"]),
        Route("/api/docs", docs_page, methods=["GET"]),
        *api.starlette_routes("/api"),
    ]
