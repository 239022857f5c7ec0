"""One registry for REST routes: each entry is both a Starlette route and its OpenAPI operation,
so /api/openapi.json cannot drift from what is served.

A route's `auth` is also what enforces it: the registry builds the RequestContext the declaration asks for before
the handler runs (so no handler can forget the check) and hands it over, as the handler's second argument when it
takes one, else through `user_context(request)` / `admin_context(request)`, which then return it as it is."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runplane.resolvers.context import RequestContext
from runplane.rest_compat.common import admin_context, context_for_route, public_context, user_context
from runplane.rest_compat.schema_models import body_schema, query_parameters

Handler = Callable[[Request], Awaitable[Response]]
ContextHandler = Callable[[Request, RequestContext], Awaitable[Response]]
H = TypeVar("H", Handler, ContextHandler)

# auth, checked before the handler runs:
#   "user"    a valid credential (401 without one, the credential's own error with a bad one), counted against the
#             caller's requests per minute; `query_token=True` routes (EventSource streams) also take `?token=`;
#   "admin"   an admin token or X-API-Key (401 without, 403 for a user's token);
#   "public"  no credential read (a handler may still read an optional one itself, as login does);
#   "webhook" no credential: the handler checks the provider's signature.
AUTH_KINDS = ("public", "user", "admin", "webhook")


@dataclass
class ApiRoute:
    method: str
    path: str
    handler: Handler | ContextHandler
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

    def add(self, method: str, path: str, summary: str, **meta: Any) -> Callable[[H], H]:
        assert meta.get("auth", "user") in AUTH_KINDS

        def register(handler: H) -> H:
            self.routes.append(ApiRoute(method.upper(), path, handler, summary, **_documented(meta)))
            return handler

        return register

    def starlette_routes(self, prefix: str = "/api") -> list[Route]:
        by_path: dict[str, dict[str, Handler]] = {}
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


def enforced(route: ApiRoute) -> Handler:
    """The route's handler behind its declared auth: the context is built (or the request refused) first."""
    with_context = len(inspect.signature(route.handler).parameters) == 2
    handler = route.handler

    async def endpoint(request: Request) -> Response:
        ctx = await _context(request, route)
        context_for_route(request, route.auth, ctx)
        if with_context:
            return await cast(ContextHandler, handler)(request, ctx)
        return await cast(Handler, handler)(request)

    return endpoint


async def _context(request: Request, route: ApiRoute) -> RequestContext:
    if route.auth == "user":
        return await user_context(request, query_token=route.query_token)
    if route.auth == "admin":
        return await admin_context(request)
    return await public_context(request)  # public and webhook: nothing read


def _dispatch(methods: dict[str, Handler]) -> Handler:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await methods[method](request)

    return endpoint


api = RouteTable()
