"""Strawberry's ASGI view with our context: per-request RequestContext, WebSocket auth at connection_init."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import strawberry
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.streaming import HTTPStreamTransport, MultipartSubscriptionTransport
from strawberry.http.websocket_origin import normalize_allowed_origins
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions import (
    GRAPHQL_SSE_PROTOCOL,
    GRAPHQL_TRANSPORT_WS_PROTOCOL,
    GRAPHQL_WS_PROTOCOL,
    MULTIPART_SUBSCRIPTION_PROTOCOL,
)
from strawberry.types import ExecutionResult
from strawberry.types.execution import SubscriptionExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UNSET

from runplane.auth.credentials import token_from_connection_params
from runplane.errors import RateLimited
from runplane.graphql_media import (
    GRAPHQL_RESPONSE_JSON,
    LineFeedSSETransport,
    OperationTypes,
    RequestRefused,
    accepts_json,
    negotiate_media_type,
)
from runplane.graphql_ws import LegacyWSHandler, TransportWSHandler
from runplane.persisted_queries import PersistedQueries
from runplane.resolvers import rate_limits
from runplane.schema.context import GraphQLContext
from runplane.schema.errors import formatted_domain_error
from runplane.services import Services
from runplane.transport_context import authenticate_context, request_context


def request_error_status(response: GraphQLHTTPResponse) -> int | None:
    """The status of a request error (parse, validation, variable coercion: nothing executed, so `data` is
    null and no error has a path), or None when execution started (field errors, even with `data: null`)."""
    errors = response.get("errors")
    if response.get("data") is not None or not errors or any("path" in e for e in errors if isinstance(e, dict)):
        return None
    codes = {(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)}
    return 500 if "INTERNAL_SERVER_ERROR" in codes else 400


def rate_limited_response(exc: RateLimited, request: Request) -> Response:
    media_type = negotiate_media_type(request.headers.get("accept", ""))
    headers = {"Retry-After": str(exc.retry_after)}
    body = {"errors": [formatted_domain_error(exc)]}
    return JSONResponse(body, status_code=429, headers=headers, media_type=media_type)


def websocket_origins(cors_origins: tuple[str, ...]) -> tuple[str, ...]:
    """The CORS origins also open the WebSocket handshake (browsers send Origin there but apply no CORS): a page
    allowed to call /graphql over HTTP may subscribe too; any other cross-origin handshake gets 403."""
    try:
        normalize_allowed_origins(cors_origins)
    except ValueError as exc:
        raise ValueError(f"RUNPLANE_CORS_ORIGINS: {exc}") from None
    return cors_origins


SUBSCRIPTION_NEEDS_A_STREAM = (
    "A subscription over HTTP needs a streaming Accept header: `text/event-stream` (GraphQL over SSE) or "
    "`multipart/mixed;subscriptionSpec=1.0` (multipart); or use the WebSocket at /graphql (graphql-transport-ws)."
)


GRAPHIQL_HTML = (Path(__file__).with_name("static") / "graphiql.html").read_text()


class RunplaneGraphQL(GraphQL[GraphQLContext, None]):
    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler
    stream_transport_classes_by_protocol: Mapping[str, type[HTTPStreamTransport]] = {
        MULTIPART_SUBSCRIPTION_PROTOCOL: MultipartSubscriptionTransport,
        GRAPHQL_SSE_PROTOCOL: LineFeedSSETransport,
    }

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
                GRAPHQL_TRANSPORT_WS_PROTOCOL,
                GRAPHQL_WS_PROTOCOL,
                MULTIPART_SUBSCRIPTION_PROTOCOL,
                GRAPHQL_SSE_PROTOCOL,
            ),
            allowed_origins=websocket_origins(settings.cors_origins),
        )
        self.services = services
        self.operation_types = OperationTypes(settings.graphql_max_document_chars, settings.graphql_max_tokens)
        self.persisted = PersistedQueries(settings, services.redis)

    @property
    def graphql_ide_html(self) -> str:
        """GraphiQL with its assets served by runplane (runplane/static): Strawberry's page loads them from a CDN,
        which leaves it blank without internet."""
        return GRAPHIQL_HTML

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

    def should_render_graphql_ide(self, request: Any) -> bool:
        """A GET with a persisted-query hash and no query is an operation, not a visit to GraphiQL."""
        return "extensions" not in request.query_params and super().should_render_graphql_ide(request)

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        """The negotiated media type rides on the sub-response, which create_response receives (not the request)."""
        sub_response = await super().get_sub_response(request)
        sub_response.media_type = negotiate_media_type(request.headers.get("accept", ""))
        return sub_response

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: Response
    ) -> Response:
        """GraphQL over HTTP: with application/graphql-response+json a request error has no `data` entry and a
        4xx status. Strawberry always answers application/json with 200, which the spec keeps for that type
        (clients written before application/graphql-response+json read errors from 200s)."""
        graphql_response = sub_response.media_type == GRAPHQL_RESPONSE_JSON
        if graphql_response and isinstance(response_data, dict) and (status := request_error_status(response_data)):
            response_data = response_data.copy()
            response_data.pop("data", None)
            sub_response.status_code = sub_response.status_code or status
        response = super().create_response(response_data, sub_response)
        if graphql_response:
            response.headers["content-type"] = f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8"
        response.headers.append("vary", "Accept")  # the media type (and JSON or a stream) follows Accept
        return response

    async def execute_operation(  # Strawberry's signature
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: GraphQLContext,
        root_value: None,
        sub_response: Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        signed_in = context.ctx.principal is not None
        for data in request_data if isinstance(request_data, list) else [request_data]:
            data.query = await self.persisted.resolve(
                data.query, data.extensions, data.operation_name, signed_in=signed_in
            )
        if isinstance(request_data, GraphQLRequestData):
            self.negotiate_transport(request_data, request.headers.get("accept", ""))
        return await super().execute_operation(
            request=request,
            request_adapter=request_adapter,
            request_data=request_data,
            context=context,
            root_value=root_value,
            sub_response=sub_response,
        )

    def negotiate_transport(self, request_data: GraphQLRequestData, accept: str) -> None:
        """A query or mutation is answered as JSON whenever the Accept header admits JSON, even if it also lists
        text/event-stream or multipart/mixed (urql lists all of them); only subscriptions, and clients that accept
        nothing but a stream (graphql-sse), stream. Changed in place: Strawberry's `run` reads the same object."""
        if request_data.protocol == "http" or not accepts_json(accept):
            return
        if self.operation_types.of(request_data.query, request_data.operation_name) is not OperationType.SUBSCRIPTION:
            request_data.protocol = "http"

    async def execute_single(  # Strawberry's signature
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: GraphQLContext,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """GraphQL over HTTP: a mutation over GET is 405 Method Not Allowed with an Allow header, not
        Strawberry's 400. Starlette's HTTPException carries headers (the app's handler sends {"detail"})."""
        try:
            return await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except HTTPException as exc:
            cause = exc.__cause__
            if not isinstance(cause, InvalidOperationTypeError):
                raise
            if cause.operation_type is OperationType.MUTATION and request_adapter.method == "GET":
                raise StarletteHTTPException(405, exc.reason, headers={"Allow": "POST"}) from cause
            if cause.operation_type is OperationType.SUBSCRIPTION:
                raise RequestRefused(
                    SUBSCRIPTION_NEEDS_A_STREAM, code="SUBSCRIPTION_NEEDS_A_STREAM", status=400
                ) from cause
            raise

    async def run(  # type: ignore[override]  # Strawberry's overloads; the implementation takes both
        self, request: Request | WebSocket, context: GraphQLContext = UNSET, root_value: None = UNSET
    ) -> Response | WebSocket:
        """Over the rate limit an HTTP request gets 429 with Retry-After and a GraphQL response body (`errors`
        with `extensions.code` RATE_LIMITED), which GraphQL clients read; not the REST dialect's `{"detail"}`."""
        try:
            return await super().run(request, context, root_value)
        except RateLimited as exc:
            if isinstance(request, WebSocket):
                raise
            return rate_limited_response(exc, request)
        except RequestRefused as exc:
            if isinstance(request, WebSocket):
                raise
            return await self.refusal_response(exc, request)

    async def refusal_response(self, exc: RequestRefused, request: Request) -> Response:
        """A request refused before execution, as GraphQL clients read it: `errors` with `extensions.code`, with
        `exc.status`, or else the status GraphQL over HTTP gives a request error of the negotiated media type."""
        sub_response = await self.get_sub_response(request)
        if exc.status is not None:
            sub_response.status_code = exc.status
        body: Any = {"data": None, "errors": [exc.formatted]}
        response = self.create_response(body, sub_response)
        response.headers["cache-control"] = "no-store"
        return response

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
        if context.ctx.connection is not None:  # the socket closes (4403) when the token expires or is revoked
            context.ctx.connection.follow_credentials(context.ctx.principal)
        try:  # a connection counts as one request of the user
            await rate_limits.hit(context.ctx, "requests", context.ctx.settings.rate_limit_per_minute)
        except RateLimited as exc:
            raise ConnectionRejectionError(
                {"message": exc.message, "code": exc.code, "retry_after": exc.retry_after}
            ) from None
        return None
