"""Every loader filters by owner itself: the batches for rows without an owner column (a run's events, a thread's
messages) check their parent's owner in the same query, so a caller who reaches them with another user's ids (a
future field, a bug in a parent's check) gets nothing."""

from __future__ import annotations

from runplane.auth.abilities import PROJECTS_READ
from runplane.auth.principal import Principal
from runplane.events.log import append_event
from runplane.models import Message, User
from runplane.resolvers import agent_runs as run_ops
from runplane.resolvers import threads as thread_ops
from runplane.resolvers.context import RequestContext
from runplane.resolvers.pagination import PageArgs
from runplane.statuses import RunStatus
from tests.factories import create_run, create_thread, create_user
from tests.support import LiveServer


def context_of(server: LiveServer, user: User) -> RequestContext:
    principal = Principal(user_id=user.id, abilities=frozenset({PROJECTS_READ}))
    return RequestContext(services=server.app.state.services, principal=principal)


async def test_last_events_only_of_the_callers_runs(server: LiveServer) -> None:
    stranger = await create_user()
    mine, theirs = await create_run(RunStatus.RUNNING), await create_run(RunStatus.RUNNING)
    await append_event(mine.id, "content", {"text": "mine"})
    me = await User.get(id=mine.owner_id)
    found = await run_ops.last_events_by_run(context_of(server, me), [mine.id, theirs.id], 5)
    assert [e.type for e in found[0]] == ["status", "content"] and found[1] == []
    assert await run_ops.last_events_by_run(context_of(server, stranger), [mine.id], 5) == [[]]


async def test_messages_only_of_the_callers_threads(server: LiveServer) -> None:
    stranger = await create_user()
    thread = await create_thread()
    await Message.create(thread_id=thread.id, role="user", content="private")
    owner = await User.get(id=thread.owner_id)
    args = PageArgs(first=10)
    [page] = await thread_ops.message_pages_by_thread(context_of(server, owner), [thread.id], args)
    assert [m.content for m in page.items] == ["private"]
    [page] = await thread_ops.message_pages_by_thread(context_of(server, stranger), [thread.id], args)
    assert page.items == []


async def test_message_counts_only_of_the_callers_threads(server: LiveServer) -> None:
    stranger = await create_user()
    thread = await create_thread()
    await Message.create(thread_id=thread.id, role="user", content="one")
    await Message.create(thread_id=thread.id, role="assistant", content="two")
    owner = await User.get(id=thread.owner_id)
    assert await thread_ops.message_counts_by_thread(context_of(server, owner), [thread.id]) == [2]
    assert await thread_ops.message_counts_by_thread(context_of(server, stranger), [thread.id]) == [0]
