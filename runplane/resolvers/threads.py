"""Threads (conversations inside a project) and their messages."""

from __future__ import annotations

import uuid

from tortoise.transactions import in_transaction

from runplane.auth.abilities import PROJECTS_READ, PROJECTS_WRITE
from runplane.errors import InvalidInput, NotFound
from runplane.models import Message, Thread
from runplane.models.choices import MessageRole
from runplane.resolvers.context import RequestContext
from runplane.resolvers.pagination import Page, PageArgs, children_counts, children_pages, page_args, paginate
from runplane.resolvers.projects import owned_project
from runplane.resolvers.validation import RawId, clean_text, parse_uuid, required_id

MAX_TITLE = 200
MAX_MESSAGE = 100_000
MAX_MESSAGES_PAGE = 1000  # a thread's messages come in pages this large at most
MESSAGE_ROLES: frozenset[str] = frozenset(MessageRole)


async def owned_thread(ctx: RequestContext, thread_id: RawId, *, ability: str = PROJECTS_READ) -> Thread:
    user_id = ctx.require(ability)
    thread = await Thread.get_or_none(id=parse_uuid(thread_id, "Thread"), owner_id=user_id)
    if thread is None:
        raise NotFound("Thread not found")
    return thread


async def list_threads(
    ctx: RequestContext,
    *,
    project_id: RawId | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[Thread]:
    user_id = ctx.require(PROJECTS_READ)
    query = Thread.filter(owner_id=user_id)
    if project_id is not None:
        query = query.filter(project_id=(await owned_project(ctx, project_id)).id)
    args = page_args(first=first, after=after, last=last, before=before)
    return await paginate(query, args)


async def create_thread(ctx: RequestContext, *, project_id: RawId, title: str | None = None) -> Thread:
    project = await owned_project(ctx, required_id(project_id, "project_id", "Project"), ability=PROJECTS_WRITE)
    clean_title = clean_text(title, "title", max_length=MAX_TITLE, required=False)
    return await Thread.create(owner_id=project.owner_id, project=project, title=clean_title)


async def list_messages(
    ctx: RequestContext, *, thread_id: RawId, first: int | None = None, after: str | None = None
) -> Page[Message]:
    thread = await owned_thread(ctx, thread_id)
    return await paginate(Message.filter(thread_id=thread.id), page_args(first=first, after=after))


async def list_messages_oldest_first(
    ctx: RequestContext, *, thread_id: RawId, first: int | None = None, after: str | None = None
) -> Page[Message]:
    """A conversation reads from its start: oldest first, `after` a cursor of this listing."""
    thread = await owned_thread(ctx, thread_id)
    args = page_args(first=first, after=after, maximum=MAX_MESSAGES_PAGE)
    return await paginate(Message.filter(thread_id=thread.id), args, oldest_first=True)


async def post_user_message(ctx: RequestContext, *, thread_id: RawId, content: str, kind: str) -> Message:
    """What a client posts is the user's turn: other roles are written by runs, not by clients."""
    thread = await owned_thread(ctx, thread_id, ability=PROJECTS_WRITE)
    if kind != "user":
        raise InvalidInput("Only user messages can be posted", field="type")
    return await append_message(thread, content=content, role="user")


async def add_message(ctx: RequestContext, *, thread_id: RawId, content: str, role: str = "user") -> Message:
    thread = await owned_thread(ctx, thread_id, ability=PROJECTS_WRITE)
    return await append_message(thread, content=content, role=role)


async def append_message(thread: Thread, *, content: str, role: str) -> Message:
    """Append to a thread the caller already owns (used inside other operations' transactions too)."""
    if role not in MESSAGE_ROLES:
        raise InvalidInput(f"role must be one of {', '.join(sorted(MESSAGE_ROLES))}", field="role")
    text = clean_text(content, "content", max_length=MAX_MESSAGE)
    async with in_transaction():
        message = await Message.create(thread=thread, role=role, content=text)
        await Thread.filter(id=thread.id).update(updated_at=message.created_at)
    return message


async def threads_by_ids(ctx: RequestContext, ids: list[uuid.UUID]) -> list[Thread | None]:
    user_id = ctx.require(PROJECTS_READ)
    rows = {t.id: t for t in await Thread.filter(id__in=set(ids), owner_id=user_id)}
    return [rows.get(i) for i in ids]


async def thread_pages_by_project(
    ctx: RequestContext, project_ids: list[uuid.UUID], args: PageArgs
) -> list[Page[Thread]]:
    """Batch for loaders: a page of each project's threads (newest first), owner re-checked in the query."""
    user_id = ctx.require(PROJECTS_READ)
    return await children_pages(Thread, "project_id", project_ids, args, owner_id=user_id)


async def message_pages_by_thread(
    ctx: RequestContext, thread_ids: list[uuid.UUID], args: PageArgs
) -> list[Page[Message]]:
    """Batch for loaders: a page of each thread's messages; only the caller's threads have any (messages have no
    owner column: their thread's is checked in the same query)."""
    user_id = ctx.require(PROJECTS_READ)
    return await children_pages(Message, "thread_id", thread_ids, args, owner_id=user_id, owner_parent=Thread)


async def thread_counts_by_project(ctx: RequestContext, project_ids: list[uuid.UUID]) -> list[int]:
    return await children_counts(Thread, "project_id", project_ids, owner_id=ctx.require(PROJECTS_READ))


async def message_counts_by_thread(ctx: RequestContext, thread_ids: list[uuid.UUID]) -> list[int]:
    """Messages have no owner column: their thread's owner is checked in the same query."""
    user_id = ctx.require(PROJECTS_READ)
    return await children_counts(Message, "thread_id", thread_ids, owner_id=user_id, owner_parent=Thread)
