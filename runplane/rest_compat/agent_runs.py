"""Agent routes of Cheatcode's documented API (README "REST compatibility API"), plus `?after=` polling. SSE framing
lives in rest_compat/sse.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from runplane.clock import iso
from runplane.errors import BadRequest
from runplane.events.types import RunEventMessage
from runplane.models import AgentRun, Project, Thread
from runplane.models.agent_run import ACTIVE_STATUSES
from runplane.resolvers import agent_runs as ops
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.agent_requests import AgentInitiate, AgentStart, EventsQuery, RunStreamQuery
from runplane.rest_compat.bodies import PageQuery, parse_body, parse_query, validated
from runplane.rest_compat.common import ok
from runplane.rest_compat.dialect import DialectQuery, is_cheatcode
from runplane.rest_compat.projects import project_json
from runplane.rest_compat.registry import api
from runplane.rest_compat.run_messages import MessageEncoder
from runplane.rest_compat.schemas import (
    AGENT_INITIATED,
    AGENT_RUN,
    AGENT_RUN_LIST,
    AGENT_STARTED,
    AGENT_STATUS,
    EVENT_LIST,
    EVENT_STREAM,
    MODEL_LIST,
)
from runplane.rest_compat.sse import FrameEncoder, ShapeEncoder, event_stream_response
from runplane.rest_compat.threads import thread_json
from runplane.statuses import RunStatus

TAG = "agent"
# The plan's quota or limits (402), an active run on the thread already (409).
RUN_START_ERRORS = (402, 409)


def run_json(run: AgentRun, *, cheatcode: bool = False) -> dict[str, Any]:
    """runplane's fields, the original backend's (`run_id`; camelCase on GET /agent-run/{id}) and, in the cheatcode
    dialect, an active run's status as `running`: the web app (useAgentStream.startStreaming) finalizes any run
    whose status is not `running` before it connects, and the original stored new runs as `running`."""
    status = "running" if cheatcode and run.status in ACTIVE_STATUSES else run.status
    return {
        **_original_run_fields(run),
        "status": status,
        "run_status": run.status,
        "id": str(run.id),
        "agent_run_id": str(run.id),
        "thread_id": str(run.thread_id),
        "project_id": str(run.project_id),
        "model": run.model,
        "prompt": run.prompt,
        "error": run.error,
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "completed_at": iso(run.completed_at),
        "usage": {
            "prompt_tokens": run.prompt_tokens,
            "completion_tokens": run.completion_tokens,
            "total_tokens": run.total_tokens,
        },
        "event_count": run.event_count,
    }


def _original_run_fields(run: AgentRun) -> dict[str, Any]:
    return {
        "run_id": str(run.id),
        "threadId": str(run.thread_id),
        "startedAt": iso(run.started_at),
        "completedAt": iso(run.completed_at),
        "updated_at": iso(run.completed_at or run.started_at or run.created_at),
    }


def event_json(event: RunEventMessage) -> dict[str, Any]:
    """The documented frame: {"type": ..., <payload fields>, "sequence": n}."""
    return {"type": event.type, **event.payload, "sequence": event.sequence, "created_at": event.created_at}


@api.add(
    "GET",
    "/models/available",
    "List available LLM models (public: the server's catalogue, nothing of the caller's)",
    tag=TAG,
    response=MODEL_LIST,
    auth="public",
)
async def models_available(request: Request, ctx: RequestContext) -> Response:
    models = await ops.available_models(ctx)
    return ok({"models": models, "default_model_id": ctx.settings.default_model})


@api.add(
    "POST",
    "/thread/{thread_id}/agent/start",
    "Start an agent run on a thread",
    tag=TAG,
    body=AgentStart,
    response=AGENT_STARTED,
    errors=RUN_START_ERRORS,
)
async def start(request: Request, ctx: RequestContext) -> Response:
    """Without a prompt, the run answers the thread's last user message (POST /thread/{id}/messages first, as the
    web app does). The web app's other options (enable_thinking, reasoning_effort, stream, app_type) are accepted
    and have no effect."""
    body = await parse_body(request, AgentStart, required=False)
    run = await ops.start_run(
        ctx,
        thread_id=request.path_params["thread_id"],
        prompt=body.prompt,
        model=body.model or body.model_name,
        idempotency_key=body.idempotency_key or request.headers.get("idempotency-key"),
    )
    return ok({"agent_run_id": str(run.id), "status": run.status})


@api.add(
    "GET",
    "/agent-run/{agent_run_id}/stream",
    "Stream agent responses via SSE (Last-Event-ID resumes)",
    tag=TAG,
    response=EVENT_STREAM,
    query=[RunStreamQuery, DialectQuery],
    other_responses={"204": {"description": "The run has ended and every event was sent: stop reconnecting"}},
    query_token=True,
)
async def stream(request: Request, ctx: RequestContext) -> Response:
    encoder = _stream_encoder(request)
    query = parse_query(request, RunStreamQuery)
    after = request.headers.get("last-event-id") or query.after or 0  # an EventSource's reconnect names its cursor
    handle = await ops.open_stream(ctx, run_id=request.path_params["agent_run_id"], after=after)
    if handle.over:  # 204: an EventSource stops reconnecting to a run that has nothing more to say
        return Response(status_code=204, headers={"Cache-Control": "no-store"})
    encoding = encoder(str(handle.run.thread_id))
    return await event_stream_response(ctx, handle, encoding, heartbeat=ctx.settings.sse_heartbeat_seconds)


_EVENT_FRAMES = ShapeEncoder(event_json)


def _stream_encoder(request: Request) -> Callable[[str], FrameEncoder]:
    """Chosen before the stream slot is taken: a bad `dialect` is a 422, not a leaked slot."""
    if is_cheatcode(request):
        return MessageEncoder
    return lambda _thread_id: _EVENT_FRAMES


@api.add("POST", "/agent-run/{agent_run_id}/stop", "Stop an active agent run", tag=TAG, response=AGENT_STATUS)
async def stop(request: Request, ctx: RequestContext) -> Response:
    run = await ops.stop_run(ctx, run_id=request.path_params["agent_run_id"])
    message = "Agent run stopped" if run.status == RunStatus.STOPPED else "Stop signal sent"
    return ok({"agent_run_id": str(run.id), "status": run.status, "stop_requested": True, "message": message})


@api.add(
    "POST",
    "/agent-run/{agent_run_id}/pause",
    "Pause a running agent run",
    tag=TAG,
    response=AGENT_STATUS,
    errors=(409,),
)
async def pause(request: Request, ctx: RequestContext) -> Response:
    run = await ops.pause_run(ctx, run_id=request.path_params["agent_run_id"])
    return ok({"agent_run_id": str(run.id), "status": run.status})


@api.add(
    "POST",
    "/agent-run/{agent_run_id}/resume",
    "Resume a paused agent run",
    tag=TAG,
    response=AGENT_STATUS,
    errors=(409,),
)
async def resume(request: Request, ctx: RequestContext) -> Response:
    run = await ops.resume_run(ctx, run_id=request.path_params["agent_run_id"])
    return ok({"agent_run_id": str(run.id), "status": run.status})


@api.add(
    "GET",
    "/agent-run/{agent_run_id}",
    "Get agent run details (`?dialect=cheatcode`: an active run's status reads `running`)",
    tag=TAG,
    response=AGENT_RUN,
    query=[DialectQuery],
)
async def get_run(request: Request, ctx: RequestContext) -> Response:
    cheatcode = is_cheatcode(request)
    run = await ops.owned_run(ctx, request.path_params["agent_run_id"])
    return ok(run_json(run, cheatcode=cheatcode))


@api.add("GET", "/agent-run/{agent_run_id}/status", "Get agent run status", tag=TAG, response=AGENT_STATUS)
async def status(request: Request, ctx: RequestContext) -> Response:
    run = await ops.owned_run(ctx, request.path_params["agent_run_id"])
    return ok(
        {
            "agent_run_id": str(run.id),
            "status": run.status,
            "error": run.error,
            "completed_at": iso(run.completed_at),
            "db_status": run.status,
            "timestamp": iso(run.started_at or run.created_at),
        }
    )


@api.add(
    "GET",
    "/agent-run/{agent_run_id}/events",
    "Poll a run's events after a sequence number",
    tag=TAG,
    response=EVENT_LIST,
    query=[EventsQuery],
)
async def events(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, EventsQuery)
    found = await ops.list_events(ctx, run_id=request.path_params["agent_run_id"], after=query.after, limit=query.limit)
    return ok({"events": [event_json(e) for e in found], "last_sequence": found[-1].sequence if found else None})


@api.add(
    "GET",
    "/thread/{thread_id}/agent-runs",
    "List all runs for a thread",
    tag=TAG,
    response=AGENT_RUN_LIST,
    query=[PageQuery],
)
async def thread_runs(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, PageQuery)
    page = await ops.list_runs(
        ctx, thread_id=request.path_params["thread_id"], first=query.limit or 20, after=query.cursor
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
    body=AgentInitiate,
    response=AGENT_INITIATED,
    errors=RUN_START_ERRORS,
)
async def initiate(request: Request, ctx: RequestContext) -> Response:
    """JSON, or multipart form data as Cheatcode's web app sends it (lib/api/agents.ts initiateAgent: `prompt`,
    `model_name`, image `files`, `app_type` (web or mobile, kept on the project), and options that have no effect
    here: enable_thinking, reasoning_effort, stream, enable_context_manager, is_agent_builder, target_agent_id)."""
    body, attachments = await _initiate_body(request)
    project, thread, run = await ops.initiate_agent(
        ctx,
        prompt=body.prompt,
        name=body.name,
        model=body.model or body.model_name,
        idempotency_key=body.idempotency_key or request.headers.get("idempotency-key"),
        attachments=attachments,
        app_type=body.app_type,
    )
    return ok(initiated_json(project, thread, run))


def initiated_json(project: Project, thread: Thread, run: AgentRun) -> dict[str, Any]:
    return {
        "project_id": str(project.id),
        "thread_id": str(thread.id),
        "agent_run_id": str(run.id),
        "status": run.status,
        "project": project_json(project),
        "thread": thread_json(thread),
    }


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


async def _initiate_body(request: Request) -> tuple[AgentInitiate, list[ops.Attachment]]:
    if not request.headers.get("content-type", "").startswith(FORM_TYPES):
        return await parse_body(request, AgentInitiate), []
    try:
        form = await request.form(max_files=ops.MAX_ATTACHMENTS, max_fields=50)
    except HTTPException as exc:
        raise BadRequest(f"Malformed multipart body: {exc.detail}") from None
    try:
        fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        uploads = [u for u in form.getlist("files") + form.getlist("file") if isinstance(u, UploadFile)]
        attachments = [
            ops.Attachment(u.filename or "upload", u.content_type or "application/octet-stream", await u.read())
            for u in uploads
        ]
    finally:
        await form.close()
    return validated(AgentInitiate, fields, strict=False), attachments
