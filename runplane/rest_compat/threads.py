from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field
from starlette.requests import Request
from starlette.responses import Response

from runplane.clock import iso
from runplane.models import Message, Thread
from runplane.resolvers import threads as ops
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.bodies import ASCII_DIGITS, Body, PageQuery, parse_body, parse_query, text
from runplane.rest_compat.common import list_response, ok
from runplane.rest_compat.dialect import DialectQuery, is_cheatcode
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import MESSAGE, MESSAGE_LIST, THREAD, THREAD_LIST

TAG = "threads"
UUID_TEXT = Field(None, json_schema_extra={"format": "uuid"})  # a malformed id is a 404, as an unknown one


class ThreadQuery(PageQuery):
    project_id: str | None = UUID_TEXT


class ThreadCreate(Body):
    project_id: str = Field(json_schema_extra={"format": "uuid"})
    title: str | None = text(ops.MAX_TITLE)


class MessagePageQuery(PageQuery):
    limit: Annotated[int, Field(ge=1, le=ops.MAX_MESSAGES_PAGE), ASCII_DIGITS] | None = None


class MessageCreate(Body):
    # The original's names too: `message` for `content`, `role` for `type`.
    content: str = Field(min_length=1, max_length=ops.MAX_MESSAGE, validation_alias=AliasChoices("content", "message"))
    type: Literal["user"] = Field("user", validation_alias=AliasChoices("type", "role"))


def thread_json(thread: Thread) -> dict[str, Any]:
    """runplane's fields, and the original's `metadata.name` (the thread's title) and `is_public`."""
    return {
        "thread_id": str(thread.id),
        "project_id": str(thread.project_id),
        "account_id": str(thread.owner_id),
        "title": thread.title,
        "metadata": {"name": thread.title} if thread.title else {},
        "is_public": False,
        "created_at": iso(thread.created_at),
        "updated_at": iso(thread.updated_at),
    }


def message_json(message: Message) -> dict[str, Any]:
    """The original backend's message row (content and metadata JSON-encoded, `type` the role), and runplane's
    `role` and plain `text`."""
    return {
        "message_id": str(message.id),
        "thread_id": str(message.thread_id),
        "type": message.role,
        "role": message.role,
        "is_llm_message": message.role in {"user", "assistant"},
        "content": json.dumps({"role": message.role, "content": message.content}, ensure_ascii=False),
        "text": message.content,
        "metadata": "{}",
        "created_at": iso(message.created_at),
        "updated_at": iso(message.created_at),
    }


@api.add(
    "GET",
    "/threads",
    "List the caller's threads, optionally of one project (a bare array in the cheatcode dialect)",
    tag=TAG,
    response={"oneOf": [THREAD_LIST, {"type": "array", "items": THREAD}]},
    query=[ThreadQuery, DialectQuery],
    errors=(404,),  # no such project
)
async def list_threads(request: Request, ctx: RequestContext) -> Response:
    cheatcode = is_cheatcode(request)
    query = parse_query(request, ThreadQuery)
    page = await ops.list_threads(
        ctx, project_id=query.project_id, first=query.limit or (50 if cheatcode else 20), after=query.cursor
    )
    return list_response([thread_json(t) for t in page.items], page, "threads", bare=cheatcode)


@api.add(
    "POST",
    "/threads",
    "Create a thread in a project",
    tag=TAG,
    body=ThreadCreate,
    response=THREAD,
    status=201,
    errors=(404,),
)  # no such project
async def create_thread(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, ThreadCreate)
    thread = await ops.create_thread(ctx, project_id=body.project_id, title=body.title)
    return ok(thread_json(thread), status=201)


@api.add(
    "GET",
    "/thread/{thread_id}/messages",
    "List a thread's messages, oldest first",
    tag=TAG,
    response=MESSAGE_LIST,
    query=[MessagePageQuery],
)
async def list_messages(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, MessagePageQuery)
    page = await ops.list_messages_oldest_first(
        ctx, thread_id=request.path_params["thread_id"], first=query.limit or 100, after=query.cursor
    )
    return list_response([message_json(m) for m in page.items], page, "messages", bare=False)


@api.add(
    "POST",
    "/thread/{thread_id}/messages",
    "Post a user message to a thread (then start a run without a prompt to answer it)",
    tag=TAG,
    body=MessageCreate,
    response=MESSAGE,
    status=201,
)
async def post_message(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, MessageCreate)
    message = await ops.post_user_message(
        ctx, thread_id=request.path_params["thread_id"], content=_plain_text(body.content), kind=body.type
    )
    return ok(message_json(message), status=201)


def _plain_text(content: str) -> str:
    """The original stored messages as JSON text `{"role": "user", "content": "..."}`: a client that sends that
    form gets its text stored, not the JSON around it."""
    if content.startswith("{"):
        try:
            decoded = json.loads(content)
        except ValueError:
            return content
        if isinstance(decoded, dict) and decoded.get("role") == "user" and isinstance(decoded.get("content"), str):
            text: str = decoded["content"]
            return text
    return content
