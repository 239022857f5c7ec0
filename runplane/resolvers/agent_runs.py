"""Agent runs: start (idempotent, one active run per thread), stop, pause, resume, read, and events."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from runplane.agents import lifecycle, outbox
from runplane.agents.catalog import list_available_models
from runplane.auth.abilities import PROJECTS_READ, PROJECTS_WRITE, RUNS_CONTROL, RUNS_START
from runplane.errors import Conflict, DomainError, InvalidInput, NotFound
from runplane.events.live import Encode, LiveGroup, LiveGroups, Member
from runplane.events.log import REPLAY_PAGE, append_event, replay
from runplane.events.reader import follow_run_heartbeat
from runplane.events.types import ControlSignal, RunEventMessage
from runplane.models import AgentRun, Message, Project, RunCommand, RunEvent, Thread
from runplane.models.agent_run import ACTIVE_STATUSES, TERMINAL_STATUSES
from runplane.models.choices import AppType
from runplane.numbers import ascii_int
from runplane.resolvers import billing, rate_limits, sandboxes
from runplane.resolvers.batching import first_children
from runplane.resolvers.context import RequestContext
from runplane.resolvers.pagination import Page, PageArgs, children_counts, children_pages, page_args, paginate
from runplane.resolvers.projects import count_projects
from runplane.resolvers.threads import append_message, owned_thread
from runplane.resolvers.validation import RawId, clean_choice, clean_limit, clean_text, parse_uuid
from runplane.statuses import RunStatus

log = logging.getLogger("runplane.agent_runs")
MAX_PROMPT = 100_000
MAX_MODEL_NAME = 200
MAX_IDEMPOTENCY_KEY = 200
MAX_PROJECT_NAME = 200  # a name given at initiate; else one is made from the prompt
EVENTS_PAGE_MAX = 1000


async def owned_run(ctx: RequestContext, run_id: RawId, *, ability: str = PROJECTS_READ) -> AgentRun:
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
    thread_id: RawId,
    prompt: str | None = None,
    model: str | None = None,
    idempotency_key: str | None = None,
) -> AgentRun:
    """Queue a run on the thread. The prompt, if any, is appended as the user's message first.

    Same idempotency key again -> the same run. A second active run on the thread -> Conflict.
    No tokens left beyond the reservations of the user's runs in flight -> QuotaExceeded (402), decided in
    the transaction that inserts the run (billing.reserve_run_tokens).
    """
    user_id = ctx.require(RUNS_START)
    thread = await owned_thread(ctx, thread_id, ability=RUNS_START)
    key = _clean_idempotency_key(idempotency_key)
    if key is not None and (existing := await _run_by_key(user_id, key)):
        return existing
    text = clean_text(prompt, "prompt", max_length=MAX_PROMPT, required=False)
    chosen_model = _clean_model(ctx, model)
    payer = await _admit(ctx, chosen_model)
    try:
        async with in_transaction():
            run, queued = await _insert_run(ctx, payer, thread, text, chosen_model, key)
    except IntegrityError:
        # Either a concurrent start with the same key won (return its run) or the thread is busy.
        if key is not None and (existing := await _run_by_key(user_id, key)):
            return existing
        raise Conflict("This thread already has an active agent run") from None
    await _announce(ctx, run, queued)
    return run


async def _run_by_key(user_id: uuid.UUID, key: str) -> AgentRun | None:
    return await AgentRun.get_or_none(owner_id=user_id, idempotency_key=key)


async def _admit(ctx: RequestContext, model: str) -> billing.RunPayer:
    """The checks before a run's transaction: who pays (the subscription exists), the start rate."""
    payer = await billing.run_payer(ctx, model=model)
    await rate_limits.hit(ctx, "run starts", ctx.settings.run_starts_per_minute)
    return payer


async def _insert_run(
    ctx: RequestContext, payer: billing.RunPayer, thread: Thread, prompt: str, model: str, key: str | None
) -> tuple[AgentRun, RunEventMessage]:
    """Inside the caller's transaction: the token reservation, the user's message, the run, its first event
    and its dispatch in the outbox (so a Redis outage after the commit loses no job)."""
    await billing.reserve_run_tokens(ctx, payer)  # locks the subscription row until the run is in
    if prompt:
        await append_message(thread, content=prompt, role="user")
    else:  # a follow-up posted to the thread first (Cheatcode's web app): the run answers that message
        prompt = await _last_user_message(thread)
    run = await AgentRun.create(
        owner_id=thread.owner_id,
        project_id=thread.project_id,
        thread=thread,
        active_thread_id=thread.id,
        model=model,
        prompt=prompt,
        idempotency_key=key,
        abilities=sorted(ctx.principal.abilities) if ctx.principal else None,  # bound the run's tools
    )
    queued = await append_event(run.id, "status", {"status": RunStatus.QUEUED})
    if ctx.settings.uses_job_queue:  # an in-process queue cannot be down; its restarts resubmit queued runs
        await outbox.add(run.id)
    return run, queued


async def _announce(ctx: RequestContext, run: AgentRun, queued: RunEventMessage) -> None:
    """After the commit: the first event to live readers, the run to an executor. If the job queue is down the
    start still succeeds: the run waits in the outbox and runs once Redis is back (runplane/agents/outbox.py)."""
    await ctx.services.event_bus.publish(queued)
    if ctx.settings.uses_job_queue:
        await outbox.send_now(ctx.services.dispatcher, run.id)
    else:  # in-process: no outbox row was written (see _insert_run)
        await ctx.services.dispatcher.submit(run.id)


async def _last_user_message(thread: Thread) -> str:
    last = await Message.filter(thread_id=thread.id, role="user").order_by("-created_at").first()
    return last.content if last is not None else ""


async def initiate_agent(
    ctx: RequestContext,
    *,
    prompt: str,
    name: str | None = None,
    model: str | None = None,
    idempotency_key: str | None = None,
    attachments: Sequence[Attachment] = (),
    app_type: str | None = None,
) -> tuple[Project, Thread, AgentRun]:
    """Project + thread + run in one call (POST /api/agent/initiate), in ONE transaction: a refused initiate
    (project cap, tokens, a concurrent twin) leaves nothing behind, and a retry with the same idempotency key
    returns the first call's project, thread and run. Attachments (images) are written to the project's sandbox
    inside it and named in the prompt, as `[Uploaded File: /workspace/<name>]` lines."""
    user_id = ctx.require(RUNS_START)
    ctx.require(PROJECTS_WRITE)
    key = _clean_idempotency_key(idempotency_key)
    if key is not None and (existing := await _run_by_key(user_id, key)):
        return await _initiated(existing)
    text = clean_text(prompt, "prompt", max_length=MAX_PROMPT)
    check_attachments(attachments)
    project_name = clean_text(name, "name", max_length=MAX_PROJECT_NAME, required=False) or _name_from_prompt(text)
    kind = clean_choice(app_type, "app_type", AppType, default=AppType.WEB)
    chosen_model = _clean_model(ctx, model)
    payer = await _admit(ctx, chosen_model)
    uploads = _Uploads()
    try:
        async with in_transaction():
            project, thread = await _create_project(ctx, user_id, project_name, kind)
            if attachments:
                text += await uploads.write(ctx, project, attachments)
            run, queued = await _insert_run(ctx, payer, thread, text, chosen_model, key)
    except BaseException as exc:
        await uploads.discard(ctx)  # the sandbox row went with the transaction: its files go too
        if isinstance(exc, IntegrityError) and key is not None and (existing := await _run_by_key(user_id, key)):
            return await _initiated(existing)  # a concurrent initiate with the same key won
        raise
    await _announce(ctx, run, queued)
    return project, thread, run


async def _create_project(ctx: RequestContext, user_id: uuid.UUID, name: str, app_type: str) -> tuple[Project, Thread]:
    """Inside the caller's transaction: the project (within the plan's cap) and its first thread."""

    async def create() -> tuple[Project, Thread]:
        project = await Project.create(owner_id=user_id, name=name, app_type=app_type)
        return project, await Thread.create(owner_id=user_id, project=project, title=name)

    return await billing.create_within_limit(
        ctx, limit="projects", count=lambda: count_projects(user_id), create=create
    )


async def _initiated(run: AgentRun) -> tuple[Project, Thread, AgentRun]:
    project = await Project.get(id=run.project_id)
    thread = await Thread.get(id=run.thread_id)
    return project, thread, run


def _name_from_prompt(prompt: str) -> str:
    """The first line that says something: not a code fence, without markdown markers, at most 60 characters
    (cut at a word)."""
    for line in prompt.splitlines():
        words = _MARKUP.sub(" ", line).split()
        if words and not line.lstrip().startswith("```"):
            title = " ".join(words)
            return title if len(title) <= 60 else title[:60].rsplit(" ", 1)[0].rstrip(",.;:") + "..."
    return "New project"


_MARKUP = re.compile(r"^\s*(#+|>|[-*+]|\d+[.)])\s+|[*_`~]+")
MAX_ATTACHMENTS = 20
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".svg", ".bmp", ".ico", ".tiff", ".tif")


@dataclass(frozen=True)
class Attachment:
    """A file sent with a prompt (multipart `files` of /agent/initiate)."""

    filename: str
    content_type: str
    data: bytes

    @property
    def is_image(self) -> bool:
        return self.content_type.startswith("image/") or self.filename.lower().endswith(IMAGE_SUFFIXES)

    @property
    def safe_name(self) -> str:
        """One path segment: a client's name is never a path (`../x`, `a/b`)."""
        name = self.filename.replace("/", "_").replace("\\", "_").strip().lstrip(".")
        return name[:200] or "upload"


def check_attachments(attachments: Sequence[Attachment]) -> None:
    """Before anything is created: only images (as the original backend), a bounded number."""
    if len(attachments) > MAX_ATTACHMENTS:
        raise InvalidInput(f"At most {MAX_ATTACHMENTS} files per prompt", field="files")
    for item in attachments:
        if not item.is_image:
            raise InvalidInput(
                f"Only image files are allowed (got {item.filename!r}, {item.content_type})", field="files"
            )


class _Uploads:
    """The attachments of one initiate, and the sandbox they went to (removed again if the initiate fails)."""

    def __init__(self) -> None:
        self.sandbox_id: uuid.UUID | None = None

    async def write(self, ctx: RequestContext, project: Project, attachments: Sequence[Attachment]) -> str:
        """Write the files to the project's sandbox; the prompt names each one written, and those that were not."""
        row = await sandboxes.ensure_sandbox(ctx, project_id=project.id)
        self.sandbox_id = row.id
        written, failed = [], []
        for item in attachments:
            try:
                await sandboxes.write_file(ctx, sandbox_id=row.id, path=item.safe_name, data=item.data)
                written.append(f"[Uploaded File: {sandboxes.WORKSPACE_PREFIX}/{item.safe_name}]")
            except DomainError as exc:  # too large, quota: the run still starts, and is told
                failed.append(f"- {item.safe_name} ({exc.message})")
        notes = "\n\n" + "\n".join(written) if written else ""
        if failed:
            notes += "\n\nThe following files failed to upload:\n" + "\n".join(failed)
        return notes

    async def discard(self, ctx: RequestContext) -> None:
        if self.sandbox_id is None:
            return
        try:
            await asyncio.shield(ctx.services.sandboxes.destroy(str(self.sandbox_id)))
        except Exception:  # the initiate's own error is what the caller must see
            log.exception("could not remove the files of a failed initiate (sandbox %s)", self.sandbox_id)


async def stop_run(ctx: RequestContext, *, run_id: RawId) -> AgentRun:
    """Queued or paused-without-worker runs stop here; a running one is told through the control channel
    (whichever process executes it). The flag also lets the reaper finish it if that worker died."""
    run = await owned_run(ctx, run_id, ability=RUNS_CONTROL)
    if run.status in TERMINAL_STATUSES:
        return run
    await AgentRun.filter(id=run.id, status__in=ACTIVE_STATUSES).update(stop_requested=True)
    # A queued run has no executor yet: end it here (the executor's claim then finds nothing to do).
    if not await lifecycle.finish(ctx.services, run.id, RunStatus.STOPPED, from_statuses=(RunStatus.QUEUED,)):
        await ctx.services.event_bus.publish_control(str(run.id), ControlSignal.STOP, {})
        await _until_terminal(run)
    await run.refresh_from_db()
    return run


STOP_WAIT_SECONDS = 5.0  # a running executor sees the signal between chunks or tool calls; usually within 100 ms


async def _until_terminal(run: AgentRun) -> None:
    """Answer with the status the stop led to, not the `running` of the instant the signal left: a client that
    reads `stopRun { status }` then trusts it. Bounded: a busy or dead executor leaves the reaper to finish it
    (`stop_requested` is set), and the answer is then still `running`."""
    deadline = asyncio.get_running_loop().time() + STOP_WAIT_SECONDS
    pause = 0.02
    while asyncio.get_running_loop().time() < deadline:
        await run.refresh_from_db(fields=["status"])
        if run.status in TERMINAL_STATUSES:
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.25)


async def pause_run(ctx: RequestContext, *, run_id: RawId) -> AgentRun:
    run = await owned_run(ctx, run_id, ability=RUNS_CONTROL)
    events = await lifecycle.transition(run.id, from_statuses=(RunStatus.RUNNING,), to=RunStatus.PAUSED)
    if not events:
        raise Conflict(f"Only a running run can be paused (this one is {run.status})", current_status=run.status)
    await lifecycle.publish_all(ctx.services, events)
    await run.refresh_from_db()
    return run


async def resume_run(ctx: RequestContext, *, run_id: RawId) -> AgentRun:
    run = await owned_run(ctx, run_id, ability=RUNS_CONTROL)
    events = await lifecycle.transition(run.id, from_statuses=(RunStatus.PAUSED,), to=RunStatus.RUNNING)
    if not events:
        raise Conflict(f"Only a paused run can be resumed (this one is {run.status})", current_status=run.status)
    await lifecycle.publish_all(ctx.services, events)
    await run.refresh_from_db()
    return run


async def list_runs(
    ctx: RequestContext,
    *,
    thread_id: RawId,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[AgentRun]:
    thread = await owned_thread(ctx, thread_id)
    args = page_args(first=first, after=after, last=last, before=before)
    query = AgentRun.filter(thread_id=thread.id)
    return await paginate(query, args)


async def list_events(
    ctx: RequestContext, *, run_id: RawId, after: object = 0, limit: int | None = None
) -> list[RunEventMessage]:
    run = await owned_run(ctx, run_id)
    return await replay(
        run.id, _clean_after(after), clean_limit(limit, default=EVENTS_PAGE_MAX, maximum=EVENTS_PAGE_MAX)
    )


async def run_counts_by_thread(ctx: RequestContext, thread_ids: list[uuid.UUID]) -> list[int]:
    return await children_counts(AgentRun, "thread_id", thread_ids, owner_id=ctx.require(PROJECTS_READ))


async def run_pages_by_thread(ctx: RequestContext, thread_ids: list[uuid.UUID], args: PageArgs) -> list[Page[AgentRun]]:
    """Batch for loaders: a page of each thread's runs (newest first), owner re-checked in the same query."""
    user_id = ctx.require(PROJECTS_READ)
    return await children_pages(AgentRun, "thread_id", thread_ids, args, owner_id=user_id)


async def last_events_by_run(ctx: RequestContext, run_ids: list[uuid.UUID], limit: int) -> list[list[RunEvent]]:
    """Batch for loaders: each run's last `limit` log records, oldest of them first; only the caller's runs have
    any (events have no owner column: their run's is checked in the same query)."""
    user_id = ctx.require(PROJECTS_READ)
    grouped = await first_children(
        RunEvent, "run_id", run_ids, limit, owner_id=user_id, owner_parent=AgentRun, order="sequence DESC"
    )
    return [list(reversed(grouped.get(rid, []))) for rid in run_ids]


async def list_commands(ctx: RequestContext, *, run_id: RawId) -> list[RunCommand]:
    run = await owned_run(ctx, run_id)
    return await RunCommand.filter(run_id=run.id).order_by("created_at")


def _clean_after(after: object) -> int:
    if after is None:
        return 0
    if isinstance(after, str):
        parsed = ascii_int(after, max_digits=12)
        if parsed is None:
            raise InvalidInput("after must be a non-negative integer sequence number", field="after")
        return parsed
    if not isinstance(after, int) or isinstance(after, bool) or after < 0:
        raise InvalidInput("after must be a non-negative integer sequence number", field="after")
    return after


@dataclass
class RunStream:
    run: AgentRun
    after: int
    release: Callable[[], Awaitable[None]]
    # The run has ended and the client has every event: nothing will ever follow (SSE answers 204, which
    # tells an EventSource to stop reconnecting).
    over: bool = False


async def open_stream(ctx: RequestContext, *, run_id: RawId, after: object = 0) -> RunStream:
    """Authorize a live stream of the run's events after `after` (cursor or Last-Event-ID) and take
    one of the user's stream slots; `follow` gives it back when the stream ends."""
    run = await owned_run(ctx, run_id)
    cursor = _clean_after(after)
    if run.status in TERMINAL_STATUSES and cursor >= run.event_count:  # status and count change in one transaction
        return RunStream(run, cursor, _no_slot, over=True)
    return RunStream(run, cursor, await rate_limits.acquire_stream_slot(ctx, ctx.user_id))


async def assistant_message_before(run_id: uuid.UUID, sequence: int) -> tuple[str, str] | None:
    """The assistant message whose last chunk is the `content` event right before `sequence` (error events skipped):
    its message_id and whole text, read back from the log. None when the step before `sequence` wrote no text.
    For streams already authorized on the run (no owner check here)."""
    rows = await RunEvent.filter(run_id=run_id, sequence__lt=sequence).order_by("-sequence").limit(_MESSAGE_SCAN)
    rows = list(itertools.dropwhile(lambda r: r.type == "error", rows))
    if not rows or rows[0].type != "content":
        return None
    message_id = rows[0].payload.get("message_id")
    chunks = itertools.takewhile(lambda r: r.type == "content" and r.payload.get("message_id") == message_id, rows)
    text = "".join(str(r.payload.get("content", "")) for r in reversed(list(chunks)))
    return str(message_id or f"{run_id}:{rows[0].sequence}"), text


_MESSAGE_SCAN = 2000  # content events of one model reply (256 characters each): 500 KB of text


async def follow(
    ctx: RequestContext, stream: RunStream, *, heartbeat: float = 15.0
) -> AsyncGenerator[RunEventMessage | None, None]:
    """Replay after the cursor, then tail live, each event once; None every `heartbeat` seconds of silence."""
    run_id = stream.run.id

    async def replay_after(after: int) -> list[RunEventMessage]:
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

    def follow_after(after: int) -> AsyncGenerator[RunEventMessage | None, None]:
        return follow(ctx, RunStream(run, after, _no_slot), heartbeat=heartbeat)

    async def replay_after(after: int) -> list[RunEventMessage]:
        return await replay(run.id, after)

    return groups.join((id(ctx.services.event_bus), str(run.id), encoding), member, follow_after, replay_after, encode)


async def _no_slot() -> None:
    """Nothing to give back: a live group's reader holds no stream slot."""


async def available_models(ctx: RequestContext) -> list[dict[str, Any]]:
    """The server's model catalogue: the same for everyone, so anonymous callers get it too (as in the original)."""
    return await list_available_models(ctx.services)
