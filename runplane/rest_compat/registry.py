"""One registry for REST routes: each entry is both a Starlette route and its OpenAPI operation,
so /api/openapi.json cannot drift from what is served."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runplane.rest_compat.schema_models import body_schema, query_parameters

Handler = Callable[[Request], Awaitable[Response]]

# auth: "public" | "user" | "admin" (X-API-Key or an admin token) | "webhook" (signature)
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
        by_path: dict[str, dict[str, Handler]] = {}
        for route in self.routes:
            by_path.setdefault(route.path, {})[route.method] = route.handler
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


def _dispatch(methods: dict[str, Handler]) -> Handler:
    async def endpoint(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await methods[method](request)

    return endpoint


api = RouteTable()
