from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from runplane import models
from runplane.resolvers import threads as ops
from runplane.schema.common import Connection, Node
from runplane.schema.connections import RowBacked, connection_from_page, connection_of_page, row_fields
from runplane.schema.context import loaders, rctx
from runplane.schema.enums import MessageRole
from runplane.schema.errors import ConflictError, ForbiddenError, InputError, NotFoundError, typed_errors
from runplane.schema.ids import from_global_id, to_global_id
from runplane.schema.loaders import child_count, page_key, prefetch_below, resolved

if TYPE_CHECKING:  # names of the lazy annotations below (strawberry.lazy resolves them at schema build)
    from runplane.schema.agent_runs import AgentRun
    from runplane.schema.projects import Project


@strawberry.type
class Message(Node):
    role: MessageRole
    content: str
    created_at: datetime
    _row: strawberry.Private[models.Message]

    @classmethod
    def from_row(cls, row: models.Message) -> "Message":
        return cls(
            id=to_global_id("Message", row.id),
            role=MessageRole(row.role),
            content=row.content,
            created_at=row.created_at,
            _row=row,
        )


@strawberry.type
class Thread(RowBacked, Node):
    title: str
    created_at: datetime
    updated_at: datetime
    _row: strawberry.Private[models.Thread]

    @classmethod
    def from_row(cls, row: models.Thread) -> "Thread":
        return cls.lazy(row)

    # Relation fields are plain defs: `resolved` answers at once from prefetched loaders (loaders.prefetch).
    @strawberry.field
    def project(self, info: strawberry.Info) -> Annotated["Project", strawberry.lazy("runplane.schema.projects")]:
        return resolved(loaders(info).ProjectByIdLoader, self._row.project_id, _project_of_thread)

    @strawberry.field(description="Agent runs on this thread, newest first.")
    def runs(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Annotated["AgentRun", strawberry.lazy("runplane.schema.agent_runs")]]:
        key = page_key(self._row, {"first": first, "after": after, "last": last, "before": before})
        found = loaders(info)
        count = child_count(found, "Thread.runs", self._row.id)
        return resolved(found.RunsByThreadLoader, key, lambda page: connection_of_page(page, _agent_run_type(), count))

    @strawberry.field(description="Messages, newest first (`last`: the oldest, where the conversation starts).")
    def messages(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Message]:
        key = page_key(self._row, {"first": first, "after": after, "last": last, "before": before})
        found = loaders(info)
        count = child_count(found, "Thread.messages", self._row.id)
        return resolved(
            found.MessagesByThreadLoader, key, lambda page: connection_from_page(page, Message.from_row, count)
        )


row_fields(
    Thread,
    id=lambda row: to_global_id("Thread", row.id),
    title=lambda row: row.title,
    created_at=lambda row: row.created_at,
    updated_at=lambda row: row.updated_at,
)


def _agent_run_type() -> type[RowBacked]:
    """AgentRun (schema.agent_runs imports this module: imported on first use, then a global read)."""
    global _AgentRun
    if _AgentRun is None:
        from runplane.schema.agent_runs import AgentRun

        _AgentRun = AgentRun
    return _AgentRun


_AgentRun: type[RowBacked] | None = None


def _project_of_thread(row: models.Project | None) -> Annotated["Project", strawberry.lazy("runplane.schema.projects")]:
    from runplane.schema.projects import Project

    assert row is not None  # the thread was owner-checked, so is its project
    return Project.from_row(row)


@strawberry.type
class ThreadPayload:
    thread: Thread


@strawberry.type
class MessagePayload:
    message: Message


CreateThreadResult = Annotated[
    ThreadPayload | InputError | NotFoundError | ForbiddenError, strawberry.union("CreateThreadResult")
]
PostMessageResult = Annotated[
    MessagePayload | InputError | NotFoundError | ForbiddenError | ConflictError, strawberry.union("PostMessageResult")
]


@strawberry.input
class CreateThreadInput:
    project_id: strawberry.ID
    title: str | None = None


@strawberry.input
class PostMessageInput:
    thread_id: strawberry.ID
    content: str


@strawberry.type
class ThreadQueries:
    @strawberry.field
    async def thread(self, info: strawberry.Info, id: strawberry.ID) -> Thread | None:
        row = await ops.owned_thread(rctx(info), from_global_id(id, "Thread"))
        await prefetch_below(info, [row], "Thread", connection=False)
        return Thread.from_row(row)

    @strawberry.field(description="The caller's threads, newest first; optionally of one project.")
    async def threads(
        self,
        info: strawberry.Info,
        project_id: strawberry.ID | None = None,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Thread] | None:
        project = from_global_id(project_id, "Project") if project_id is not None else None
        page = await ops.list_threads(
            rctx(info), project_id=project, first=first, after=after, last=last, before=before
        )
        await prefetch_below(info, page.items, "Thread", connection=True)
        return connection_from_page(page, Thread.from_row)


@strawberry.type
class ThreadMutations:
    @strawberry.mutation
    @typed_errors
    async def create_thread(self, info: strawberry.Info, input: CreateThreadInput) -> CreateThreadResult:
        project_id = from_global_id(input.project_id, "Project")
        row = await ops.create_thread(rctx(info), project_id=project_id, title=input.title)
        return ThreadPayload(thread=Thread.from_row(row))

    @strawberry.mutation(description="Append a user message to a thread.")
    @typed_errors
    async def post_message(self, info: strawberry.Info, input: PostMessageInput) -> PostMessageResult:
        thread_id = from_global_id(input.thread_id, "Thread")
        row = await ops.add_message(rctx(info), thread_id=thread_id, content=input.content)
        return MessagePayload(message=Message.from_row(row))
