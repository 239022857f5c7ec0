from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runplane.models import Thread
from runplane.resolvers import threads as ops
from runplane.rest_compat.common import iso, json_body, ok, query_int, user_context
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import PAGE_QUERY, THREAD, THREAD_CREATE, THREAD_LIST, UUID

TAG = "threads"


def thread_json(thread: Thread) -> dict[str, Any]:
    return {
        "thread_id": str(thread.id),
        "project_id": str(thread.project_id),  # type: ignore[attr-defined]
        "account_id": str(thread.owner_id),  # type: ignore[attr-defined]
        "title": thread.title,
        "created_at": iso(thread.created_at),
        "updated_at": iso(thread.updated_at),
    }


@api.add(
    "GET",
    "/threads",
    "List the caller's threads, optionally of one project",
    tag=TAG,
    response=THREAD_LIST,
    query=[{"name": "project_id", "in": "query", "schema": UUID}, *PAGE_QUERY],
    errors=(404,),  # no such project
)
async def list_threads(request: Request) -> Response:
    ctx = await user_context(request)
    page = await ops.list_threads(
        ctx,
        project_id=request.query_params.get("project_id"),
        first=query_int(request, "limit", 20, minimum=1, maximum=100),
        after=request.query_params.get("cursor"),
    )
    return ok(
        {
            "threads": [thread_json(t) for t in page.items],
            "next_cursor": page.end_cursor if page.has_next_page else None,
        }
    )


@api.add(
    "POST",
    "/threads",
    "Create a thread in a project",
    tag=TAG,
    body=THREAD_CREATE,
    response=THREAD,
    status=201,
    errors=(404,),
)  # no such project
async def create_thread(request: Request) -> Response:
    ctx = await user_context(request)
    body = await json_body(request)
    thread = await ops.create_thread(ctx, project_id=body.get("project_id"), title=body.get("title"))
    return ok(thread_json(thread), status=201)
