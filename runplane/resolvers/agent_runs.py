"""Agent runs: start (idempotent, one active run per thread), stop, pause, resume, read, and events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from runplane.agents import lifecycle
from runplane.auth.abilities import PROJECTS_READ, PROJECTS_WRITE, RUNS_CONTROL, RUNS_START
from runplane.errors import Conflict, InvalidInput, NotFound
from runplane.events.live import Encode, LiveGroup, LiveGroups, Member
from runplane.events.log import REPLAY_PAGE, append_event, replay
from runplane.events.reader import follow_run_heartbeat
from runplane.events.types import ControlSignal, RunEvent
from runplane.models import AgentRun, CommandRecord, Project, RunEventRecord, Thread
from runplane.models.agent_run import ACTIVE_STATUSES, TERMINAL_STATUSES
from runplane.resolvers import billing, rate_limits
from runplane.resolvers.batching import first_children
from runplane.resolvers.context import RequestContext
from runplane.resolvers.pagination import Page, paginate
from runplane.resolvers.projects import count_projects
from runplane.resolvers.threads import append_message, owned_thread
from runplane.resolvers.validation import clean_limit, clean_text, parse_uuid

MAX_PROMPT = 100_000
MAX_MODEL_NAME = 200
MAX_IDEMPOTENCY_KEY = 200
EVENTS_PAGE_MAX = 1000


async def owned_run(ctx: RequestContext, run_id: object, *, ability: str = PROJECTS_READ) -> AgentRun:
    user_id = ctx.require(ability)
    run = await AgentRun.get_or_none(id=parse_uuid(run_id, "Agent run"), owner_id=user_id)
    if run is None:
        raise NotFound("Agent run not found")
    return run


def _clean_model(ctx: RequestContext, model: object) -> str:
    if model is None or model == "":
        return ctx.settings.default_model
    return clean_text(model, "model", max_length=MAX_MODEL_NAME)


def _clean_idempotency_key(key: object) -> str | None:
    if key is None:
        return None
    return clean_text(key, "idempotency_key", max_length=MAX_IDEMPOTENCY_KEY)


async def start_run(
    ctx: RequestContext,
    *,
    thread_id: object,
    prompt: object = None,
    model: object = None,
    idempotency_key: object = None,
) -> AgentRun:
    """Queue a run on the thread. The prompt, if any, is appended as the user's message first.

    Same idempotency key again -> the same run. A second active run on the thread -> Conflict.
    No tokens left beyond the reservations of the user's runs in flight -> QuotaExceeded (402), decided in
    the transaction that inserts the run (billing.reserve_run_tokens).
    """
    user_id = ctx.require(RUNS_START)
    thread = await owned_thread(ctx, thread_id, ability=RUNS_START)
    key = _clean_idempotency_key(idempotency_key)
    if key is not None and (existing := await AgentRun.get_or_none(owner_id=user_id, idempotency_key=key)):
        return existing
    text = clean_text(prompt, "prompt", max_length=MAX_PROMPT, required=False)
    chosen_model = _clean_model(ctx, model)
    payer = await billing.run_payer(ctx, model=chosen_model)
    await rate_limits.hit(ctx, "run starts", ctx.settings.run_starts_per_minute)
    try:
        run, queued = await _create_run(ctx, payer, thread, text, chosen_model, key)
    except IntegrityError:
        # Either a concurrent start with the same key won (return its run) or the thread is busy.
        if key is not None and (existing := await AgentRun.get_or_none(owner_id=user_id, idempotency_key=key)):
            return existing
        raise Conflict("This thread already has an active agent run") from None
    await ctx.services.event_bus.publish(queued)
    await ctx.services.dispatcher.submit(run.id)
    return run


async def _create_run(
    ctx: RequestContext, payer: billing.RunPayer, thread: Thread, prompt: str, model: str, key: str | None
) -> tuple[AgentRun, RunEvent]:
    async with in_transaction():
        await billing.reserve_run_tokens(ctx, payer)  # locks the subscription row until the run is in
        if prompt:
            await append_message(thread, content=prompt, role="user")
        run = await AgentRun.create(
            owner_id=thread.owner_id,
            project_id=thread.project_id,
            thread=thread,  # type: ignore[attr-defined]
            active_thread_id=thread.id,
            model=model,
            prompt=prompt,
            idempotency_key=key,
        )
        queued = await append_event(run.id, "status", {"status": "queued"})
    return run, queued


async def initiate_agent(
    ctx: RequestContext, *, prompt: object, name: object = None, model: object = None, idempotency_key: object = None
) -> tuple[Project, Thread, AgentRun]:
    """Project + thread + run in one call (POST /api/agent/initiate)."""
    user_id = ctx.require(RUNS_START)
    ctx.require(PROJECTS_WRITE)
    text = clean_text(prompt, "prompt", max_length=MAX_PROMPT)
    project_name = clean_text(name, "name", max_length=200, required=False) or _name_from_prompt(text)

    async def create() -> tuple[Project, Thread]:
        project = await Project.create(owner_id=user_id, name=project_name)
        return project, await Thread.create(owner_id=user_id, project=project, title=project_name)

    project, thread = await billing.create_within_limit(
        ctx, limit="projects", count=lambda: count_projects(user_id), create=create
    )
    run = await start_run(ctx, thread_id=thread.id, prompt=text, model=model, idempotency_key=idempotency_key)
    return project, thread, run


def _name_from_prompt(prompt: str) -> str:
    first_line = prompt.strip().splitlines()[0] if prompt.strip() else "New project"
    return first_line[:60] or "New project"


async def stop_run(ctx: RequestContext, *, run_id: object) -> AgentRun:
    """Queued or paused-without-worker runs stop here; a running one is told through the control channel
    (whichever process executes it). The flag also lets the reaper finish it if that worker died."""
    run = await owned_run(ctx, run_id, ability=RUNS_CONTROL)
    if run.status in TERMINAL_STATUSES:
        return run
    await AgentRun.filter(id=run.id, status__in=ACTIVE_STATUSES).update(stop_requested=True)
    # A queued run has no executor yet: end it here (the executor's claim then finds nothing to do).
    if not await lifecycle.finish(ctx.services, run.id, "stopped", from_statuses=("queued",)):
        await ctx.services.event_bus.publish_control(str(run.id), ControlSignal.STOP, {})
    await run.refresh_from_db()
    return run


async def pause_run(ctx: RequestContext, *, run_id: object) -> AgentRun:
    run = await owned_run(ctx, run_id, ability=RUNS_CONTROL)
    events = await lifecycle.transition(run.id, from_statuses=("running",), to="paused")
    if not events:
        raise Conflict(f"Only a running run can be paused (this one is {run.status})", current_status=run.status)
    await lifecycle.publish_all(ctx.services, events)
    await run.refresh_from_db()
    return run


async def resume_run(ctx: RequestContext, *, run_id: object) -> AgentRun:
    run = await owned_run(ctx, run_id, ability=RUNS_CONTROL)
    events = await lifecycle.transition(run.id, from_statuses=("paused",), to="running")
    if not events:
        raise Conflict(f"Only a paused run can be resumed (this one is {run.status})", current_status=run.status)
    await lifecycle.publish_all(ctx.services, events)
    await run.refresh_from_db()
    return run


async def list_runs(
    ctx: RequestContext, *, thread_id: object, first: object = None, after: str | None = None
) -> Page[AgentRun]:
    thread = await owned_thread(ctx, thread_id)
    return await paginate(AgentRun.filter(thread_id=thread.id), first=clean_limit(first), after=after)


async def list_events(
    ctx: RequestContext, *, run_id: object, after: object = 0, limit: object = None
) -> list[RunEvent]:
    run = await owned_run(ctx, run_id)
    return await replay(
        run.id, _clean_after(after), clean_limit(limit, default=EVENTS_PAGE_MAX, maximum=EVENTS_PAGE_MAX)
    )


async def first_runs_by_thread(ctx: RequestContext, thread_ids: list[uuid.UUID], limit: int) -> list[list[AgentRun]]:
    """Batch for loaders: each thread's newest runs, owner re-checked in the same query."""
    user_id = ctx.require(PROJECTS_READ)
    grouped = await first_children(AgentRun, "thread_id", thread_ids, limit, owner_id=user_id)
    return [grouped.get(tid, []) for tid in thread_ids]


async def last_events_by_run(ctx: RequestContext, run_ids: list[uuid.UUID], limit: int) -> list[list[RunEventRecord]]:
    """Batch for loaders: each run's last `limit` log records, oldest of them first. Runs reach here only
    through owner-checked parents (events have no owner column)."""
    ctx.require(PROJECTS_READ)
    grouped = await first_children(RunEventRecord, "run_id", run_ids, limit, owner_id=None, order="seq DESC")
    return [list(reversed(grouped.get(rid, []))) for rid in run_ids]


async def list_commands(ctx: RequestContext, *, run_id: object) -> list[CommandRecord]:
    run = await owned_run(ctx, run_id)
    return await CommandRecord.filter(run_id=run.id).order_by("created_at")


def _clean_after(after: object) -> int:
    if after is None:
        return 0
    if isinstance(after, str):
        after = after.strip()
        if not after.isdigit() or len(after) > 12:
            raise InvalidInput("after must be a non-negative integer sequence number", field="after")
        return int(after)
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise InvalidInput("after must be a non-negative integer sequence number", field="after")
    return after


@dataclass
class RunStream:
    run: AgentRun
    after: int
    release: Callable[[], Awaitable[None]]


async def open_stream(ctx: RequestContext, *, run_id: object, after: object = 0) -> RunStream:
    """Authorize a live stream of the run's events after `after` (cursor or Last-Event-ID) and take
    one of the user's stream slots; `follow` gives it back when the stream ends."""
    run = await owned_run(ctx, run_id)
    cursor = _clean_after(after)
    return RunStream(run, cursor, await rate_limits.acquire_stream_slot(ctx, ctx.user_id))


async def follow(ctx: RequestContext, stream: RunStream, *, heartbeat: float = 15.0) -> AsyncIterator[RunEvent | None]:
    """Replay after the cursor, then tail live, each event once; None every `heartbeat` seconds of silence."""
    run_id = stream.run.id

    async def replay_after(after: int) -> list[RunEvent]:
        return await replay(run_id, after)

    async def is_finished() -> bool:
        return await AgentRun.filter(id=run_id, status__in=TERMINAL_STATUSES).exists()

    follower = follow_run_heartbeat(
        str(run_id),
        stream.after,
        replay_after,
        ctx.services.event_bus,
        is_finished=is_finished,
        heartbeat=heartbeat,
        page_size=REPLAY_PAGE,
    )
    try:
        async with aclosing(follower) as items:  # unsubscribe at once when the client goes away
            async for item in items:
                yield item
    finally:
        await stream.release()


def join_live_group(
    ctx: RequestContext,
    groups: LiveGroups,
    stream: RunStream,
    encoding: Hashable,
    member: Member[Any],
    encode: Encode,
    *,
    heartbeat: float,
) -> LiveGroup:
    """`member` joins the process's live group for (bus, run, encoding) (events/live.py), which is created, if
    there is none, reading the run once through `follow`. The group's reader holds no stream slot: each
    member's own stream holds one (`stream.release`)."""
    run = stream.run

    def follow_after(after: int) -> AsyncIterator[RunEvent | None]:
        return follow(ctx, RunStream(run, after, _no_slot), heartbeat=heartbeat)

    async def replay_after(after: int) -> list[RunEvent]:
        return await replay(run.id, after)

    return groups.join((id(ctx.services.event_bus), str(run.id), encoding), member, follow_after, replay_after, encode)


async def _no_slot() -> None:
    """Nothing to give back: a live group's reader holds no stream slot."""


async def available_models(ctx: RequestContext) -> list[dict[str, object]]:
    ctx.require(PROJECTS_READ)
    from runplane.agents.catalog import list_available_models

    return await list_available_models(ctx.services)
