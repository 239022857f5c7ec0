"""Strawberry's ASGI view with our context: per-request RequestContext, WebSocket auth at connection_init."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import strawberry
from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL, GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL,
)

from runplane.graphql_ws import LegacyWSHandler, TransportWSHandler
from runplane.auth.credentials import authenticate_context, token_from_connection_params
from runplane.errors import RateLimited
from runplane.resolvers import rate_limits
from runplane.resolvers.context import RequestContext
from runplane.schema.context import GraphQLContext
from runplane.services import Services


def request_context(services: Services, request: Request | WebSocket) -> RequestContext:
    request_id = getattr(request.state, "request_id", None) if hasattr(request, "state") else None
    client = request.client.host if request.client else ""
    ctx = RequestContext(services=services, user_agent=request.headers.get("user-agent", ""), client_ip=client)
    if request_id:
        ctx.request_id = request_id
    return ctx


class RunplaneGraphQL(GraphQL[GraphQLContext, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(self, schema: strawberry.Schema, services: Services) -> None:
        settings = services.settings
        super().__init__(
            schema,
            graphql_ide="graphiql" if settings.graphql_graphiql else None,
            allow_queries_via_get=True,  # mutations over GET are refused by Strawberry
            keep_alive=True,
            keep_alive_interval=15,
            connection_init_wait_timeout=timedelta(seconds=10),
            max_subscriptions_per_connection=50,
            # WebSockets (graphql-transport-ws, legacy graphql-ws), plus subscriptions over HTTP: multipart
            # (`Accept: multipart/mixed;subscriptionSpec="1.0"`) and GraphQL over SSE (`Accept: text/event-stream`).
            subscription_protocols=(
                GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL, GRAPHQL_SSE_PROTOCOL,
            ),
        )
        self.services = services

    def decode_json(self, data: str | bytes) -> object:
        """Strawberry catches only JSONDecodeError and reads `.get` off any JSON value: bytes that are not
        text, `"x"` or `5` would be 500s instead of 400s."""
        try:
            decoded = super().decode_json(data)
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, "[[[[..." too deep
            raise HTTPException(400, "Unable to parse request body as JSON") from None
        if not isinstance(decoded, (dict, list)):
            raise HTTPException(400, "The GraphQL request must be a JSON object")
        return decoded

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GraphQLContext:
        ctx = request_context(self.services, request)
        if isinstance(request, Request):
            await authenticate_context(
                ctx, authorization=request.headers.get("authorization"), api_key=request.headers.get("x-api-key")
            )
            # Per-user requests/min (anonymous calls such as login are not counted): RateLimited becomes a
            # 429 with Retry-After through the app's DomainError handler.
            await rate_limits.hit(ctx, "requests", ctx.settings.rate_limit_per_minute)
        return GraphQLContext(ctx=ctx, request=request, response=response)

    async def on_ws_connect(self, context: GraphQLContext) -> dict[str, Any] | None:
        """Authenticate a WebSocket once, from connection_init; a bad token closes the socket (4403)."""
        authorization = token_from_connection_params(context.connection_params)
        if authorization is None:
            # Browsers cannot set headers on WebSockets, but other clients can: accept the upgrade's header too.
            authorization = context.request.headers.get("authorization") if context.request else None
        if authorization is None:
            raise ConnectionRejectionError({"message": "Authentication required", "code": "UNAUTHENTICATED"})
        await authenticate_context(context.ctx, authorization=authorization)
        if context.ctx.principal is None:
            raise ConnectionRejectionError({"message": "Invalid or expired token", "code": "UNAUTHENTICATED"})
        try:  # a connection counts as one request of the user
            await rate_limits.hit(context.ctx, "requests", context.ctx.settings.rate_limit_per_minute)
        except RateLimited as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code, "retry_after": exc.retry_after}) from None
        return None
