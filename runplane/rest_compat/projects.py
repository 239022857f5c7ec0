from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runplane.models import Project
from runplane.resolvers import projects as ops
from runplane.rest_compat.common import iso, json_body, ok, query_int, user_context
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import PAGE_QUERY, PROJECT, PROJECT_CREATE, PROJECT_LIST

TAG = "projects"


def project_json(project: Project) -> dict[str, Any]:
    return {
        "project_id": str(project.id),
        "name": project.name,
        "description": project.description,
        "account_id": str(project.owner_id),  # type: ignore[attr-defined]
        "created_at": iso(project.created_at),
        "updated_at": iso(project.updated_at),
    }


@api.add(
    "GET", "/projects", "List the caller's projects, newest first", tag=TAG, response=PROJECT_LIST, query=PAGE_QUERY
)
async def list_projects(request: Request) -> Response:
    ctx = await user_context(request)
    page = await ops.list_projects(
        ctx, first=query_int(request, "limit", 20, minimum=1, maximum=100), after=request.query_params.get("cursor")
    )
    return ok(
        {
            "projects": [project_json(p) for p in page.items],
            "next_cursor": page.end_cursor if page.has_next_page else None,
        }
    )


@api.add(
    "POST", "/projects", "Create a project", tag=TAG, body=PROJECT_CREATE, response=PROJECT, status=201, errors=(402,)
)  # the plan's project limit
async def create_project(request: Request) -> Response:
    ctx = await user_context(request)
    body = await json_body(request)
    project = await ops.create_project(ctx, name=body.get("name"), description=body.get("description"))
    return ok(project_json(project), status=201)


@api.add("GET", "/projects/{project_id}", "Get a project", tag=TAG, response=PROJECT)
async def get_project(request: Request) -> Response:
    ctx = await user_context(request)
    return ok(project_json(await ops.owned_project(ctx, request.path_params["project_id"])))
