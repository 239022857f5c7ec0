"""Agent routes of seeds/cheatcode-api.md, plus `?after=` polling. SSE framing lives in rest_compat/sse.py."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runplane.events.types import RunEvent
from runplane.models import AgentRun
from runplane.resolvers import agent_runs as ops
from runplane.rest_compat.common import iso, json_body, ok, query_int, user_context
from runplane.rest_compat.projects import project_json
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import (
    AGENT_INITIATE,
    AGENT_INITIATED,
    AGENT_RUN,
    AGENT_RUN_LIST,
    AGENT_START,
    AGENT_STARTED,
    AGENT_STATUS,
    EVENT_LIST,
    EVENT_STREAM,
    MODEL_LIST,
    PAGE_QUERY,
)
from runplane.rest_compat.sse import event_stream_response
from runplane.rest_compat.threads import thread_json

TAG = "agent"
# The plan's quota or limits (402), an active run on the thread already (409).
RUN_START_ERRORS = (402, 409)


def run_json(run: AgentRun) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "agent_run_id": str(run.id),
        "thread_id": str(run.thread_id),  # type: ignore[attr-defined]
        "project_id": str(run.project_id),  # type: ignore[attr-defined]
        "status": run.status,
        "model": run.model,
        "prompt": run.prompt,
        "error": run.error,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "completed_at": iso(run.finished_at),
        "usage": {
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "total_tokens": run.total_tokens,
        },
        "event_count": run.event_count,
    }


def event_json(event: RunEvent) -> dict[str, Any]:
    """The documented frame: {"type": ..., <payload fields>, "sequence": n}."""
    return {"type": event.type, **event.payload, "sequence": event.seq, "created_at": event.created_at}


@api.add("GET", "/models/available", "List available LLM models", tag=TAG, response=MODEL_LIST)
async def models_available(request: Request) -> Response:
    ctx = await user_context(request)
    return ok({"models": await ops.available_models(ctx)})


@api.add(
    "POST",
    "/thread/{thread_id}/agent/start",
    "Start an agent run on a thread",
    tag=TAG,
    body=AGENT_START,
    response=AGENT_STARTED,
    errors=RUN_START_ERRORS,
)
async def start(request: Request) -> Response:
    ctx = await user_context(request)
    body = await json_body(request, required=False)
    run = await ops.start_run(
        ctx,
        thread_id=request.path_params["thread_id"],
        prompt=body.get("prompt"),
        model=body.get("model") or body.get("model_name"),
        idempotency_key=body.get("idempotency_key") or request.headers.get("idempotency-key"),
    )
    return ok({"agent_run_id": str(run.id), "status": run.status})


@api.add(
    "GET",
    "/agent-run/{agent_run_id}/stream",
    "Stream agent responses via SSE (Last-Event-ID resumes)",
    tag=TAG,
    response=EVENT_STREAM,
    query=[
        {"name": "token", "in": "query", "schema": {"type": "string"}},
        {"name": "after", "in": "query", "schema": {"type": "integer"}},
    ],
)
async def stream(request: Request) -> Response:
    ctx = await user_context(request, query_token=True)
    after = request.headers.get("last-event-id") or request.query_params.get("after") or 0
    handle = await ops.open_stream(ctx, run_id=request.path_params["agent_run_id"], after=after)
    return await event_stream_response(ctx, handle, event_json, heartbeat=ctx.settings.sse_heartbeat_seconds)


@api.add("POST", "/agent-run/{agent_run_id}/stop", "Stop an active agent run", tag=TAG, response=AGENT_STATUS)
async def stop(request: Request) -> Response:
    run = await ops.stop_run(await user_context(request), run_id=request.path_params["agent_run_id"])
    return ok({"agent_run_id": str(run.id), "status": run.status, "stop_requested": True})


@api.add(
    "POST",
    "/agent-run/{agent_run_id}/pause",
    "Pause a running agent run",
    tag=TAG,
    response=AGENT_STATUS,
    errors=(409,),
)
async def pause(request: Request) -> Response:
    run = await ops.pause_run(await user_context(request), run_id=request.path_params["agent_run_id"])
    return ok({"agent_run_id": str(run.id), "status": run.status})


@api.add(
    "POST",
    "/agent-run/{agent_run_id}/resume",
    "Resume a paused agent run",
    tag=TAG,
    response=AGENT_STATUS,
    errors=(409,),
)
async def resume(request: Request) -> Response:
    run = await ops.resume_run(await user_context(request), run_id=request.path_params["agent_run_id"])
    return ok({"agent_run_id": str(run.id), "status": run.status})


@api.add("GET", "/agent-run/{agent_run_id}", "Get agent run details", tag=TAG, response=AGENT_RUN)
async def get_run(request: Request) -> Response:
    return ok(run_json(await ops.owned_run(await user_context(request), request.path_params["agent_run_id"])))


@api.add("GET", "/agent-run/{agent_run_id}/status", "Get agent run status", tag=TAG, response=AGENT_STATUS)
async def status(request: Request) -> Response:
    run = await ops.owned_run(await user_context(request), request.path_params["agent_run_id"])
    return ok(
        {"agent_run_id": str(run.id), "status": run.status, "error": run.error, "completed_at": iso(run.finished_at)}
    )


@api.add(
    "GET",
    "/agent-run/{agent_run_id}/events",
    "Poll a run's events after a sequence number",
    tag=TAG,
    response=EVENT_LIST,
    query=[
        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
    ],
)
async def events(request: Request) -> Response:
    ctx = await user_context(request)
    found = await ops.list_events(
        ctx,
        run_id=request.path_params["agent_run_id"],
        after=request.query_params.get("after", "0"),
        limit=query_int(request, "limit", 1000, minimum=1, maximum=1000),
    )
    return ok({"events": [event_json(e) for e in found], "last_sequence": found[-1].seq if found else None})


@api.add(
    "GET",
    "/thread/{thread_id}/agent-runs",
    "List all runs for a thread",
    tag=TAG,
    response=AGENT_RUN_LIST,
    query=PAGE_QUERY,
)
async def thread_runs(request: Request) -> Response:
    ctx = await user_context(request)
    page = await ops.list_runs(
        ctx,
        thread_id=request.path_params["thread_id"],
        first=query_int(request, "limit", 20, minimum=1, maximum=100),
        after=request.query_params.get("cursor"),
    )
    return ok(
        {
            "agent_runs": [run_json(r) for r in page.items],
            "next_cursor": page.end_cursor if page.has_next_page else None,
        }
    )


@api.add(
    "POST",
    "/agent/initiate",
    "Create project + thread + start agent in one call",
    tag=TAG,
    body=AGENT_INITIATE,
    response=AGENT_INITIATED,
    errors=RUN_START_ERRORS,
)
async def initiate(request: Request) -> Response:
    ctx = await user_context(request)
    body = await json_body(request)
    project, thread, run = await ops.initiate_agent(
        ctx,
        prompt=body.get("prompt"),
        name=body.get("name") or body.get("project_name"),
        model=body.get("model") or body.get("model_name"),
        idempotency_key=body.get("idempotency_key"),
    )
    return ok(
        {
            "project_id": str(project.id),
            "thread_id": str(thread.id),
            "agent_run_id": str(run.id),
            "status": run.status,
            "project": project_json(project),
            "thread": thread_json(thread),
        }
    )
