"""Agent runs on GraphQL: queries, control mutations and the runEvents subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from runplane import models
from runplane.resolvers import agent_runs as ops
from runplane.schema.common import Connection, Node
from runplane.schema.connections import RowBacked, connection_from_page, row_fields
from runplane.schema.context import loaders, rctx
from runplane.schema.enums import RunStatus
from runplane.schema.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    QuotaExceededError,
    RateLimitedError,
    typed_errors,
)
from runplane.schema.ids import from_global_id, to_global_id
from runplane.schema.loaders import DEFAULT_LAST_EVENTS, last_events_key, prefetch_below, resolved
from runplane.schema.run_events import RunEvent

if TYPE_CHECKING:  # names of the lazy annotations below (strawberry.lazy resolves them at schema build)
    from runplane.schema.projects import Project
    from runplane.schema.threads import Thread


@strawberry.type
class TokenUsage:
    id: strawberry.ID = strawberry.field(description="Stable per run (Apollo's cache key).")
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@strawberry.type
class RunCommand:
    command: str
    exit_code: int | None
    duration_ms: int
    output_bytes: int
    timed_out: bool
    created_at: datetime


@strawberry.type
class AgentRun(RowBacked, Node):
    status: RunStatus
    model: str
    prompt: str
    error: str | None
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    event_count: int
    usage: TokenUsage
    _row: strawberry.Private[models.AgentRun]

    @classmethod
    def from_row(cls, row: models.AgentRun) -> "AgentRun":
        return cls.lazy(row)

    # Deployed clients still select the old name; it answers until they have moved to completedAt.
    @strawberry.field(deprecation_reason="Use completedAt")
    def finished_at(self) -> datetime | None:
        return self._row.completed_at

    # Relation fields are plain defs: `resolved` answers at once from prefetched loaders (loaders.prefetch).
    @strawberry.field
    def thread(self, info: strawberry.Info) -> Annotated["Thread", strawberry.lazy("runplane.schema.threads")]:
        return resolved(loaders(info).ThreadByIdLoader, self._row.thread_id, _thread_of_run)

    @strawberry.field(description="The run's events after a sequence number (polling).")
    async def events(self, info: strawberry.Info, after: int = 0, first: int = 100) -> list[RunEvent]:
        found = await ops.list_events(rctx(info), run_id=self._row.id, after=after, limit=first)
        return [RunEvent.from_event(e) for e in found]

    @strawberry.field(description="The run's last events (at most `last`), oldest first. Batched across runs.")
    def last_events(self, info: strawberry.Info, last: int = DEFAULT_LAST_EVENTS) -> list[RunEvent]:
        key = last_events_key(self._row, last)
        return resolved(loaders(info).LastEventsByRunLoader, key, RunEvent.lazy_list)

    @strawberry.field(description="Commands the agent ran in the sandbox.")
    async def commands(self, info: strawberry.Info) -> list[RunCommand]:
        rows = await ops.list_commands(rctx(info), run_id=self._row.id)
        return [
            RunCommand(
                command=r.command,
                exit_code=r.exit_code,
                duration_ms=r.duration_ms,
                output_bytes=r.output_bytes,
                timed_out=r.timed_out,
                created_at=r.created_at,
            )
            for r in rows
        ]


row_fields(
    AgentRun,
    id=lambda row: to_global_id("AgentRun", row.id),
    status=lambda row: row.status,
    model=lambda row: row.model,
    prompt=lambda row: row.prompt,
    error=lambda row: row.error,
    created_at=lambda row: row.created_at,
    started_at=lambda row: row.started_at,
    completed_at=lambda row: row.completed_at,
    event_count=lambda row: row.event_count,
    usage=lambda row: TokenUsage(
        id=to_global_id("TokenUsage", row.id),
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        total_tokens=row.total_tokens,
    ),
)


def _thread_of_run(row: models.Thread | None) -> Annotated["Thread", strawberry.lazy("runplane.schema.threads")]:
    from runplane.schema.threads import Thread

    assert row is not None  # the run was owner-checked, so is its thread
    return Thread.from_row(row)


@strawberry.type
class AgentRunPayload:
    agent_run: AgentRun


@strawberry.type
class InitiateAgentPayload:
    agent_run: AgentRun
    project: Annotated["Project", strawberry.lazy("runplane.schema.projects")]
    thread: Annotated["Thread", strawberry.lazy("runplane.schema.threads")]


@strawberry.type
class ModelOption:
    id: str
    name: str
    provider: str
    context_length: int | None
    default: bool


StartRunResult = Annotated[
    AgentRunPayload
    | InputError
    | NotFoundError
    | ConflictError
    | ForbiddenError
    | QuotaExceededError
    | RateLimitedError,
    strawberry.union("StartRunResult"),
]
RunControlResult = Annotated[
    AgentRunPayload | NotFoundError | ConflictError | ForbiddenError, strawberry.union("RunControlResult")
]
InitiateAgentResult = Annotated[
    InitiateAgentPayload | InputError | ForbiddenError | QuotaExceededError | RateLimitedError,
    strawberry.union("InitiateAgentResult"),
]


@strawberry.input
class StartRunInput:
    thread_id: strawberry.ID
    prompt: str | None = None
    model: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class InitiateAgentInput:
    prompt: str
    name: str | None = None
    model: str | None = None
    idempotency_key: str | None = None


@strawberry.type
class AgentRunQueries:
    @strawberry.field
    async def run(self, info: strawberry.Info, id: strawberry.ID) -> AgentRun | None:
        row = await ops.owned_run(rctx(info), from_global_id(id, "AgentRun"))
        await prefetch_below(info, [row], "AgentRun", connection=False)
        return AgentRun.from_row(row)

    @strawberry.field(description="A thread's runs, newest first.")
    async def runs(
        self,
        info: strawberry.Info,
        thread_id: strawberry.ID,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[AgentRun] | None:
        thread = from_global_id(thread_id, "Thread")
        page = await ops.list_runs(rctx(info), thread_id=thread, first=first, after=after, last=last, before=before)
        await prefetch_below(info, page.items, "AgentRun", connection=True)
        return connection_from_page(page, AgentRun.from_row)

    @strawberry.field(description="A run's events after a sequence number, for polling clients.")
    async def events(
        self, info: strawberry.Info, run_id: strawberry.ID, after: int = 0, first: int = 100
    ) -> list[RunEvent] | None:
        found = await ops.list_events(rctx(info), run_id=from_global_id(run_id, "AgentRun"), after=after, limit=first)
        return [RunEvent.from_event(e) for e in found]

    @strawberry.field
    async def available_models(self, info: strawberry.Info) -> list[ModelOption]:
        return [
            ModelOption(
                id=m["id"],
                name=m["name"],
                provider=m["provider"],
                context_length=m["context_length"],
                default=m["default"],
            )
            for m in await ops.available_models(rctx(info))
        ]


async def _run_control(
    info: strawberry.Info, id: strawberry.ID, operation: Callable[..., Awaitable[models.AgentRun]]
) -> AgentRunPayload:
    return AgentRunPayload(
        agent_run=AgentRun.from_row(await operation(rctx(info), run_id=from_global_id(id, "AgentRun")))
    )


@strawberry.type
class AgentRunMutations:
    @strawberry.mutation
    @typed_errors
    async def start_run(self, info: strawberry.Info, input: StartRunInput) -> StartRunResult:
        run = await ops.start_run(
            rctx(info),
            thread_id=from_global_id(input.thread_id, "Thread"),
            prompt=input.prompt,
            model=input.model,
            idempotency_key=input.idempotency_key,
        )
        return AgentRunPayload(agent_run=AgentRun.from_row(run))

    @strawberry.mutation
    @typed_errors
    async def stop_run(self, info: strawberry.Info, id: strawberry.ID) -> RunControlResult:
        return await _run_control(info, id, ops.stop_run)

    @strawberry.mutation
    @typed_errors
    async def pause_run(self, info: strawberry.Info, id: strawberry.ID) -> RunControlResult:
        return await _run_control(info, id, ops.pause_run)

    @strawberry.mutation
    @typed_errors
    async def resume_run(self, info: strawberry.Info, id: strawberry.ID) -> RunControlResult:
        return await _run_control(info, id, ops.resume_run)

    @strawberry.mutation(description="Create a project and a thread and start a run, in one call.")
    @typed_errors
    async def initiate_agent(self, info: strawberry.Info, input: InitiateAgentInput) -> InitiateAgentResult:
        from runplane.schema.projects import Project
        from runplane.schema.threads import Thread

        project, thread, run = await ops.initiate_agent(
            rctx(info), prompt=input.prompt, name=input.name, model=input.model, idempotency_key=input.idempotency_key
        )
        return InitiateAgentPayload(
            agent_run=AgentRun.from_row(run), project=Project.from_row(project), thread=Thread.from_row(thread)
        )


@strawberry.type
class AgentRunSubscriptions:
    @strawberry.subscription(
        description="A run's events after `after` (replayed from the log), then live, each once; ends with the run."
    )
    async def run_events(
        self, info: strawberry.Info, run_id: strawberry.ID, after: int = 0
    ) -> AsyncGenerator[RunEvent, None]:
        ctx = rctx(info)
        stream = await ops.open_stream(ctx, run_id=from_global_id(run_id, "AgentRun"), after=after)
        async for event in ops.follow(ctx, stream, heartbeat=15.0):
            if event is not None:
                yield RunEvent.from_event(event)
