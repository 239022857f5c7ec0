from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from runplane.clock import iso
from runplane.models import Project, Sandbox
from runplane.resolvers import projects as ops
from runplane.resolvers import sandboxes as sandbox_ops
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.bodies import Body, PageQuery, parse_body, parse_query, text
from runplane.rest_compat.common import list_response, ok
from runplane.rest_compat.dialect import DialectQuery, is_cheatcode
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import PROJECT, PROJECT_LIST

TAG = "projects"


class ProjectCreate(Body):
    name: str = text(ops.MAX_NAME, min_length=1, required=True)
    description: str | None = text(ops.MAX_DESCRIPTION)
    app_type: Literal["web", "mobile"] | None = Field(None, description="web (the default) or mobile (an Expo app)")


def project_json(project: Project, sandbox: Sandbox | None = None) -> dict[str, Any]:
    """runplane's fields and those Cheatcode's web app reads (frontend/src/lib/api/types.ts Project): `id`, the
    project's `sandbox` (`{}` until it has one), `is_public` (runplane has no public projects) and `app_type`
    (`web` or `mobile`, as chosen at initiate or creation)."""
    return {
        "project_id": str(project.id),
        "id": str(project.id),
        "name": project.name,
        "description": project.description,
        "account_id": str(project.owner_id),
        "created_at": iso(project.created_at),
        "updated_at": iso(project.updated_at),
        "sandbox": _sandbox_ref(sandbox),
        "is_public": False,
        "app_type": project.app_type,
    }


def _sandbox_ref(sandbox: Sandbox | None) -> dict[str, Any]:
    # dev_server_url/api_server_url: previews are short-lived signed URLs (GET /sandboxes/{id}/preview-url).
    return {"id": str(sandbox.id), "dev_server_url": "", "api_server_url": "", "token": None} if sandbox else {}


async def projects_json(ctx: RequestContext, projects: list[Project]) -> list[dict[str, Any]]:
    sandboxes = await sandbox_ops.sandboxes_of_projects(ctx, [p.id for p in projects])
    return [project_json(p, sandboxes.get(p.id)) for p in projects]


@api.add(
    "GET",
    "/projects",
    "List the caller's projects, newest first (a bare array in the cheatcode dialect, next cursor in X-Next-Cursor)",
    tag=TAG,
    response={"oneOf": [PROJECT_LIST, {"type": "array", "items": PROJECT}]},
    query=[PageQuery, DialectQuery],
)
async def list_projects(request: Request, ctx: RequestContext) -> Response:
    cheatcode = is_cheatcode(request)
    query = parse_query(request, PageQuery)
    page = await ops.list_projects(ctx, first=query.limit or (100 if cheatcode else 20), after=query.cursor)
    return list_response(await projects_json(ctx, page.items), page, "projects", bare=cheatcode)


@api.add(
    "POST", "/projects", "Create a project", tag=TAG, body=ProjectCreate, response=PROJECT, status=201, errors=(402,)
)  # the plan's project limit
async def create_project(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, ProjectCreate)
    project = await ops.create_project(ctx, name=body.name, description=body.description, app_type=body.app_type)
    return ok(project_json(project), status=201)


@api.add("GET", "/projects/{project_id}", "Get a project", tag=TAG, response=PROJECT)
async def get_project(request: Request, ctx: RequestContext) -> Response:
    project = await ops.owned_project(ctx, request.path_params["project_id"])
    return ok((await projects_json(ctx, [project]))[0])
