"""The Strawberry context and the per-operation DataLoaders.

Strawberry builds ONE context per WebSocket connection, so loaders cannot live on it (they would cache rows
for the socket's lifetime). The `PerOperationLoaders` extension puts fresh loaders in a ContextVar at the
start of every operation; graphql-core's resolver tasks inherit it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import strawberry
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.extensions import SchemaExtension

from runplane.resolvers.context import RequestContext

if TYPE_CHECKING:
    from runplane.schema.loaders import Loaders


@dataclass
class GraphQLContext:
    ctx: RequestContext
    request: Request | WebSocket | None = None  # None when executed without a transport (tests, tools)
    response: Response | WebSocket | None = None
    connection_params: dict[str, Any] | None = field(default=None)


_current_loaders: ContextVar["Loaders | None"] = ContextVar("runplane_loaders", default=None)


class PerOperationLoaders(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        from runplane.schema.loaders import Loaders

        operation: GraphQLContext = self.execution_context.context
        token = _current_loaders.set(Loaders(operation.ctx))
        try:
            yield
        finally:
            _current_loaders.reset(token)


def context(info: strawberry.Info) -> GraphQLContext:
    """The operation's context, typed (strawberry.Info leaves it Any)."""
    found: GraphQLContext = info.context
    return found


def rctx(info: strawberry.Info) -> RequestContext:
    return context(info).ctx


def loaders(info: strawberry.Info) -> "Loaders":
    current = _current_loaders.get()
    if current is None:  # subscriptions' per-event resolution runs outside on_operation
        from runplane.schema.loaders import Loaders

        current = Loaders(rctx(info))
        _current_loaders.set(current)
    return current
