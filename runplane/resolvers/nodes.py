"""Any object by its type and id (GraphQL's Query.node/nodes), through each aggregate's owner check.

Another user's object, a missing one and a type without a lookup are all None: ids are not enumerable.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from runplane.auth.abilities import PROJECTS_READ
from runplane.errors import NotFound
from runplane.models import AuthSession, Deployment, Message
from runplane.resolvers import auth
from runplane.resolvers.agent_runs import owned_run
from runplane.resolvers.context import RequestContext
from runplane.resolvers.deployments import DeploymentView, history
from runplane.resolvers.projects import owned_project
from runplane.resolvers.sandboxes.lifecycle import owned_sandbox
from runplane.resolvers.threads import owned_thread

MAX_NODES = 100


async def _message(ctx: RequestContext, message_id: uuid.UUID) -> Message | None:
    """Messages have no owner column: their thread's owner is theirs."""
    return await Message.get_or_none(id=message_id, thread__owner_id=ctx.require(PROJECTS_READ))


async def _user(ctx: RequestContext, user_id: uuid.UUID) -> object | None:
    me = await auth.me(ctx)
    return me if me.id == user_id else None


async def _session(ctx: RequestContext, session_id: uuid.UUID) -> AuthSession | None:
    return next((row for row in await auth.list_sessions(ctx) if row.id == session_id), None)


async def _deployment(ctx: RequestContext, deployment_id: uuid.UUID) -> DeploymentView | None:
    row = await Deployment.get_or_none(id=deployment_id, owner_id=ctx.require(PROJECTS_READ))
    return DeploymentView(row, await history(row)) if row is not None else None


LOOKUPS: dict[str, Callable[[RequestContext, uuid.UUID], Awaitable[object | None]]] = {
    "Project": owned_project,
    "Thread": owned_thread,
    "AgentRun": owned_run,
    "Sandbox": owned_sandbox,
    "Message": _message,
    "User": _user,
    "AuthSession": _session,
    "Deployment": _deployment,
}


async def find_node(ctx: RequestContext, type_name: str, raw_id: uuid.UUID) -> object | None:
    """The caller's object of that type and id (the row, or a view for deployments), else None."""
    lookup = LOOKUPS.get(type_name)
    if lookup is None:
        return None
    try:
        return await lookup(ctx, raw_id)
    except NotFound:
        return None
