"""WebSocket protocol handlers that send eligible runEvents subscriptions through the shared fan-out
path (schema/fanout.py); every other operation goes through Strawberry unchanged. Each operation a socket
starts counts against its user's requests per minute, as an HTTP request would.

Under runplane's uvicorn protocol the socket joins the run's live group (`fanout.deliver`: batched,
pre-framed writes, no reader task of its own); under any other server it reads its own stream
(`fanout.payloads`) and sends through ASGI."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from typing import Any

from starlette.websockets import WebSocketDisconnect
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import StartMessage
from uvicorn.protocols.utils import ClientDisconnected

from runplane.errors import DomainError, RateLimited
from runplane.events.live import SinkGone
from runplane.graphql_media import RequestRefused
from runplane.resolvers import rate_limits
from runplane.schema import fanout
from runplane.schema.context import GraphQLContext
from runplane.ws_protocol import direct_writes


def _plan(
    handler: Any, query: str, variables: dict[str, Any] | None, operation_name: str | None
) -> fanout.SharedSubscription | None:
    settings = handler.view.services.settings
    if not settings.graphql_shared_fanout:
        return None
    return fanout.plan(handler.schema._schema, query, variables, operation_name, settings.graphql_max_aliases)


async def _send_all(handler: Any, shared: fanout.SharedSubscription, prefix: str) -> None:
    """Every frame of the subscription, through the live group when the server allows direct writes."""
    writes = direct_writes(handler.websocket.ws.scope)
    if writes is not None:
        try:
            await fanout.deliver(handler.schema._schema, handler.context, shared, prefix, writes)
        except SinkGone as exc:
            raise WebSocketDisconnected from exc
        return
    async with aclosing(fanout.payloads(handler.schema._schema, handler.context, shared)) as payloads:
        async for payload in payloads:
            await _send_text(handler, prefix + payload + "}")


async def _send_text(handler: Any, text: str) -> None:
    """Send a prebuilt frame; a client that went away ends the operation like Strawberry's own sends do."""
    try:
        await handler.websocket.ws.send_text(text)
    except (WebSocketDisconnect, ClientDisconnected, RuntimeError) as exc:
        raise WebSocketDisconnected from exc


async def _refusal(handler: Any, payload: Any) -> dict[str, Any] | None:
    """Why an operation a socket starts may not run (its error, formatted), or None. Every operation counts as one
    request of its user, as over HTTP; persisted queries and the allow-list apply as over HTTP: the payload's
    query becomes the document its hash names, and an operation the allow-list does not hold is refused."""
    ctx = handler.context.ctx
    try:
        await rate_limits.hit(ctx, "requests", ctx.settings.rate_limit_per_minute)
    except RateLimited as exc:
        return fanout.domain_error_payload(exc)
    if not isinstance(payload, dict):
        return None  # Strawberry refuses a malformed message
    try:
        payload["query"] = await handler.view.persisted.resolve(
            payload.get("query"),
            payload.get("extensions"),
            payload.get("operationName"),
            signed_in=ctx.principal is not None,
        )
    except RequestRefused as exc:
        return exc.formatted
    return None


class TransportWSHandler(BaseGraphQLTransportWSHandler[GraphQLContext, None]):
    """graphql-transport-ws (the `graphql-ws` npm package's protocol)."""

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        """Over the rate limit an operation gets an `error` message (RATE_LIMITED, retry_after); the socket stays."""
        if self.connection_acknowledged and message["id"] not in self.operations:
            refused = await _refusal(self, message.get("payload"))
            if refused is not None:
                error: Any = {"id": message["id"], "type": "error", "payload": [refused]}
                await self.send_message(error)
                return
        await super().handle_subscribe(message)

    async def run_operation(self, operation: Operation[GraphQLContext, None]) -> None:
        shared = _plan(self, operation.query, operation.variables, operation.operation_name)
        if shared is None:
            await super().run_operation(operation)
            return
        prefix = '{"id":' + json.dumps(operation.id) + ',"type":"next","payload":'
        try:
            await _send_all(self, shared, prefix)
        except WebSocketDisconnected:
            self.operations.pop(operation.id, None)
            return
        except DomainError as exc:
            error: Any = {"id": operation.id, "type": "error", "payload": [fanout.domain_error_payload(exc)]}
            await operation.send_operation_message(error)
            return
        await operation.send_operation_message({"id": operation.id, "type": "complete"})


class LegacyWSHandler(BaseGraphQLWSHandler[GraphQLContext, None]):
    """The legacy `graphql-ws` subprotocol (subscriptions-transport-ws)."""

    async def handle_start(self, message: StartMessage) -> None:
        if self.connection_acknowledged:
            refused = await _refusal(self, message.get("payload"))
            if refused is not None:
                error: Any = {"type": "error", "id": message["id"], "payload": refused}
                await self.send_message(error)
                return
        await super().handle_start(message)

    async def handle_async_results(
        self, operation_id: str, query: str, operation_name: str | None, variables: dict[str, object] | None
    ) -> None:
        shared = _plan(self, query, variables, operation_name)
        if shared is None:
            await super().handle_async_results(operation_id, query, operation_name, variables)
            return
        prefix = '{"type":"data","id":' + json.dumps(operation_id) + ',"payload":'
        try:
            await _send_all(self, shared, prefix)
            await self.send_message({"type": "complete", "id": operation_id})
        except WebSocketDisconnected:
            return
        except DomainError as exc:
            error: Any = {"type": "error", "id": operation_id, "payload": fanout.domain_error_payload(exc)}
            await self.send_message(error)
        except asyncio.CancelledError:
            await self.send_message({"type": "complete", "id": operation_id})
        finally:
            self.tasks.pop(operation_id, None)
