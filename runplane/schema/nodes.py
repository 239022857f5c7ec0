"""Query.node(id:) and nodes(ids:): refetch any object that implements Node by its global id (Relay's
refetchable fragments, Apollo cache redirects). Owner checks are the resolvers' (resolvers/nodes.py): another
user's id, a malformed one or a type without a lookup is null."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry

from runplane.errors import InvalidInput
from runplane.resolvers import nodes as ops
from runplane.schema.agent_runs import AgentRun
from runplane.schema.auth import AuthSession, User
from runplane.schema.common import Node
from runplane.schema.context import rctx
from runplane.schema.deployments import Deployment
from runplane.schema.ids import decode_any_global_id
from runplane.schema.projects import Project
from runplane.schema.sandboxes import Sandbox
from runplane.schema.threads import Message, Thread


def _shapes(info: strawberry.Info) -> dict[str, Callable[[Any], Node]]:
    ctx = rctx(info)
    current = ctx.principal.session_id if ctx.principal else None
    return {
        "Project": Project.from_row,
        "Thread": Thread.from_row,
        "AgentRun": AgentRun.from_row,
        "Sandbox": Sandbox.from_row,
        "Message": Message.from_row,
        "User": User.from_row,
        "AuthSession": lambda row: AuthSession.from_row(row, current),
        "Deployment": lambda view: Deployment.from_view(info, view),
    }


async def _node(info: strawberry.Info, id: str) -> Node | None:
    decoded = decode_any_global_id(id) if isinstance(id, str) and len(id) <= 200 else None
    if decoded is None:
        return None
    type_name, raw_id = decoded
    found = await ops.find_node(rctx(info), type_name, raw_id)
    return None if found is None else _shapes(info)[type_name](found)


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object implementing Node, by its global id; null if it is not the caller's.")
    async def node(self, info: strawberry.Info, id: strawberry.ID) -> Node | None:
        return await _node(info, id)

    @strawberry.field(description="Objects by global ids, in order (at most 100); null where one is not the caller's.")
    async def nodes(self, info: strawberry.Info, ids: list[strawberry.ID]) -> list[Node | None]:
        if len(ids) > ops.MAX_NODES:
            raise InvalidInput(f"ids takes at most {ops.MAX_NODES} ids", field="ids")
        return [await _node(info, id) for id in ids]
