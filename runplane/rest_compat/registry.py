"""One registry for REST routes: each entry is both a Starlette route and its OpenAPI operation,
so /api/openapi.json cannot drift from what is served.

A route's `auth` is also what enforces it: the registry builds the RequestContext the declaration asks for before
the handler runs and hands it over as the handler's second argument. Handlers have no other way to get one, so no
handler can forget the check or make a different one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runplane.errors import Unauthenticated
from runplane.resolvers import rate_limits
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.common import services_of
from runplane.rest_compat.schema_models import body_schema, query_parameters
from runplane.transport_context import authenticate_context, request_context

Handler = Callable[[Request, RequestContext], Awaitable[Response]]  # what a route declares
Endpoint = Callable[[Request], Awaitable[Response]]  # what Starlette calls

# auth, checked before the handler runs:
#   "user"    a valid credential (401 without one, the credential's own error with a bad one), counted against the
#             caller's requests per minute; `query_token=True` routes (EventSource streams) also take `?token=`;
#   "admin"   an admin token or X-API-Key (401 without, 403 for a user's token);
#   "public"  no credential read: the handler gets an anonymous context (login, health, the model catalogue);
#   "webhook" no credential: the handler checks the provider's signature.
AUTH_KINDS = ("public", "user", "admin", "webhook")


@dataclass
class ApiRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: str = "user"
    tag: str = "default"
    body: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    status: int = 200
    query: list[dict[str, Any]] = field(default_factory=list)
    content_type: str = "application/json"
    # Error statuses this route answers besides those every route documents (runplane/rest_compat/openapi.py).
    errors: tuple[int, ...] = ()
    # Other non-error responses, by status (a stream's 204 once there is nothing more to send).
    other_responses: dict[str, Any] = field(default_factory=dict)
    body_model: type[BaseModel] | None = None  # the pydantic model `body` documents (rest_compat/bodies.py)
    query_token: bool = False  # "user" routes: a `?token=` query parameter counts as a credential too


class RouteTable:
    def __init__(self) -> None:
        self.routes: list[ApiRoute] = []

    def add(self, method: str, path: str, summary: str, **meta: Any) -> Callable[[Handler], Handler]:
        assert meta.get("auth", "user") in AUTH_KINDS

        def register(handler: Handler) -> Handler:
            self.routes.append(ApiRoute(method.upper(), path, handler, summary, **_documented(meta)))
            return handler

        return register

    def starlette_routes(self, prefix: str = "/api") -> list[Route]:
        by_path: dict[str, dict[str, Endpoint]] = {}
        for route in self.routes:
            by_path.setdefault(route.path, {})[route.method] = enforced(route)
        return [Route(prefix + path, _dispatch(methods), methods=list(methods)) for path, methods in by_path.items()]


def _documented(meta: dict[str, Any]) -> dict[str, Any]:
    """Request models (`body=Model`, `query=[Model, {...}]`) become what the document shows: the body's schema,
    one query parameter per field."""
    meta = dict(meta)
    if isinstance(meta.get("body"), type):
        meta["body_model"], meta["body"] = meta["body"], body_schema(meta["body"])
    query = meta.get("query", [])
    meta["query"] = [p for item in query for p in (query_parameters(item) if isinstance(item, type) else [item])]
    return meta


def enforced(route: ApiRoute) -> Endpoint:
    """The route's handler behind its declared auth: the context is built (or the request refused) first."""
    handler = route.handler

    async def endpoint(request: Request) -> Response:
        return await handler(request, await _context(request, route))

    return endpoint


async def _context(request: Request, route: ApiRoute) -> RequestContext:
    if route.auth == "user":
        return await _user_context(request, query_token=route.query_token)
    if route.auth == "admin":
        return await _admin_context(request)
    return request_context(services_of(request), request)  # public and webhook: no credential read


async def _user_context(request: Request, *, query_token: bool) -> RequestContext:
    ctx = await _authenticated(request, query_token=query_token)
    _ = ctx.user_id  # raises Unauthenticated (401, or the credential's own error) before the handler runs
    await rate_limits.hit(ctx, "requests", ctx.settings.rate_limit_per_minute)  # 429 + Retry-After past the limit
    return ctx


async def _admin_context(request: Request) -> RequestContext:
    ctx = await _authenticated(request)
    if ctx.principal is None:
        raise ctx.auth_error or Unauthenticated("Admin API key required")
    ctx.require_admin()  # 403 for a user's token
    return ctx


async def _authenticated(request: Request, *, query_token: bool = False) -> RequestContext:
    """The caller's principal from the first credential sent (EventSource streams may use `?token=`)."""
    ctx = request_context(services_of(request), request)
    return await authenticate_context(
        ctx,
        authorization=request.headers.get("authorization"),
        api_key=request.headers.get("x-api-key"),
        query_token=request.query_params.get("token") if query_token else None,
    )


def _dispatch(methods: dict[str, Endpoint]) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await methods[method](request)

    return endpoint


api = RouteTable()
