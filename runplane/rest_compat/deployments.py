"""Deployments (Cheatcode's documented deployment routes: README "REST compatibility API"), and the local static
sites at /sites/<id>/."""

from __future__ import annotations

import mimetypes
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from runplane.clock import iso
from runplane.deployments.base import sites_dir
from runplane.deployments.local import site_file
from runplane.resolvers import deployments as ops
from runplane.resolvers.context import RequestContext
from runplane.resolvers.validation import parse_uuid
from runplane.rest_compat.bodies import Body, parse_body, text
from runplane.rest_compat.common import ok, services_of
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import BOOL, INT, NULLABLE_STR, STR, TIME, UUID, obj

TAG = "deployments"
# A deployment's status as the web app's progress bar names it (components/thread/thread-site-header.tsx).
STATES = {"queued": "preparing", "building": "building", "ready": "deployed", "error": "failed", "canceled": "failed"}


class DeploymentUpdate(Body):
    source_dir: str | None = text(ops.MAX_SOURCE_DIR, description="sandbox folder; default dist/, build/ or the root")
    name: str | None = text(ops.MAX_SITE_NAME)


class Deploy(DeploymentUpdate):
    provider: Literal["local", "vercel"] | None = None


# The plan's deployment cap (402); already deployed, or nothing deployed to update (409); the provider failed (502)
# or is not configured (503).
PUBLISH_ERRORS = (402, 409, 502, 503)
EVENT = obj(["status", "message", "at"], status=STR, message=STR, at=TIME)
DEPLOYMENT = obj(
    ["project_id", "status"],
    project_id=UUID,
    deployment_id={**UUID, "type": ["string", "null"]},
    provider=STR,  # null: not deployed
    status=STR,
    url=NULLABLE_STR,
    version=INT,
    external_id=NULLABLE_STR,
    has_deployment=BOOL,
    domains={
        "type": "array",
        "items": STR,
        "description": "host[/path] of the site (https:// is prepended by the web app)",
    },
    state={"type": "string", "enum": sorted({*STATES.values(), "unknown"})},
    message=STR,
    source_dir=STR,
    error=NULLABLE_STR,
    created_at=TIME,
    updated_at=TIME,
    history={"type": "array", "items": EVENT},
)


def _original_fields(url: str | None, status: str | None, message: str) -> dict[str, Any]:
    domain = url.split("://", 1)[-1].rstrip("/") if url else None
    return {
        "has_deployment": status is not None and status not in {"error", "canceled"},
        "domains": [domain] if domain else [],
        "state": STATES.get(status or "", "unknown"),
        "message": message,
    }


def deployment_json(ctx: RequestContext, request: Request, view: ops.DeploymentView) -> dict[str, Any]:
    row = view.deployment
    url = ops.public_url(ctx, row, str(request.base_url))
    last = view.history[-1].message if view.history else ""
    return {
        **_original_fields(url, row.status, row.error or last),
        "project_id": str(row.project_id),
        "deployment_id": str(row.id),
        "provider": row.provider,
        "status": row.status,
        "version": row.version,
        "url": url,
        "external_id": row.external_id,
        "source_dir": row.source_dir,
        "error": row.error,
        "file_count": row.file_count,
        "total_bytes": row.total_bytes,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "history": [{"status": e.status, "message": e.message, "at": iso(e.created_at)} for e in view.history],
    }


async def _published(request: Request, ctx: RequestContext, *, update: bool) -> Response:
    project_id = request.path_params["project_id"]
    if update:
        changed = await parse_body(request, DeploymentUpdate, required=False)
        row = await ops.update_deployment(ctx, project_id=project_id, source_dir=changed.source_dir, name=changed.name)
    else:
        body = await parse_body(request, Deploy, required=False)
        row = await ops.deploy_project(
            ctx, project_id=project_id, source_dir=body.source_dir, provider=body.provider, name=body.name
        )
    return ok(
        deployment_json(ctx, request, ops.DeploymentView(row, await ops.history(row))),
        status=201 if not update else 200,
    )


@api.add(
    "POST",
    "/project/{project_id}/deploy/git",
    "Deploy a project (its sandbox folder) through the configured provider",
    tag=TAG,
    body=Deploy,
    response=DEPLOYMENT,
    status=201,
    errors=PUBLISH_ERRORS,
)
async def deploy(request: Request, ctx: RequestContext) -> Response:
    return await _published(request, ctx, update=False)


@api.add(
    "POST",
    "/project/{project_id}/deploy/git/update",
    "Publish a new version of a project's deployment",
    tag=TAG,
    body=DeploymentUpdate,
    response=DEPLOYMENT,
    errors=PUBLISH_ERRORS,
)
async def update(request: Request, ctx: RequestContext) -> Response:
    return await _published(request, ctx, update=True)


def _status_json(ctx: RequestContext, request: Request, view: ops.DeploymentView | None) -> dict[str, Any]:
    if view is None:
        return {
            **_original_fields(None, None, "Not deployed"),
            "project_id": request.path_params["project_id"],
            "status": "not_deployed",
            "deployment_id": None,
            "url": None,
            "history": [],
        }
    return deployment_json(ctx, request, view)


@api.add(
    "GET",
    "/project/{project_id}/deployment/status",
    "The project's latest deployment, as recorded",
    tag=TAG,
    response=DEPLOYMENT,
)
async def status(request: Request, ctx: RequestContext) -> Response:
    return ok(
        _status_json(ctx, request, await ops.deployment_status(ctx, project_id=request.path_params["project_id"]))
    )


@api.add(
    "GET",
    "/project/{project_id}/deployment/live-status",
    "The project's latest deployment, asked of its provider now",
    tag=TAG,
    response=DEPLOYMENT,
)
async def live_status(request: Request, ctx: RequestContext) -> Response:
    return ok(_status_json(ctx, request, await ops.live_status(ctx, project_id=request.path_params["project_id"])))


# -- local static sites ------------------------------------------------------------------------
def site_routes() -> list[BaseRoute]:
    return [
        Route("/sites/{deployment_id}", _add_slash, methods=["GET", "HEAD"]),
        Route("/sites/{deployment_id}/{path:path}", serve_site, methods=["GET", "HEAD"]),
    ]


async def _add_slash(request: Request) -> Response:
    return RedirectResponse(f"/sites/{parse_uuid(request.path_params['deployment_id'], 'Site')}/", status_code=308)


async def serve_site(request: Request) -> Response:
    """Public (a published site is public); only files of the copy, never anything outside it."""
    deployment_id = str(parse_uuid(request.path_params["deployment_id"], "Site"))
    found = site_file(sites_dir(services_of(request).settings), deployment_id, request.path_params["path"])
    if found is None:
        return JSONResponse({"detail": "Not found"}, status_code=404)
    media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    return FileResponse(
        found, media_type=media_type, headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    )
