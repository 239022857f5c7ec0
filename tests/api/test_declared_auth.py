"""A REST route's declared auth is what enforces it (rest_compat/registry.py): the registry builds the context before
the handler runs and hands it over, so a handler that checks nothing is still refused without the credential its
declaration names, and every served handler takes the context it is given (there is no other way to get one)."""

from __future__ import annotations

import inspect
import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runplane.errors import DomainError, Forbidden, Unauthenticated
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.registry import RouteTable, api
from tests.conftest import ADMIN_API_KEY
from tests.support import LiveServer, UserHandle


def careless_app(server: LiveServer) -> tuple[Starlette, list[str]]:
    """Handlers that never look at credentials, behind each kind of declaration."""
    table, reached = RouteTable(), []

    @table.add("GET", "/user-forgets", "user route whose handler checks nothing", auth="user")
    async def user_forgets(request: Request, ctx: RequestContext) -> Response:
        reached.append("user")
        return JSONResponse({})

    @table.add("GET", "/admin-forgets", "admin route whose handler checks nothing", auth="admin")
    async def admin_forgets(request: Request, ctx: RequestContext) -> Response:
        reached.append("admin")
        return JSONResponse({})

    @table.add("GET", "/given", "the registry hands the context over", auth="user")
    async def given(request: Request, ctx: RequestContext) -> Response:
        return JSONResponse({"user_id": str(ctx.user_id)})

    @table.add("GET", "/public", "public route", auth="public")
    async def public(request: Request, ctx: RequestContext) -> Response:
        return JSONResponse({"principal": ctx.principal is not None})

    @table.add("GET", "/stream", "EventSource-style route", auth="user", query_token=True)
    async def stream(request: Request, ctx: RequestContext) -> Response:
        return JSONResponse({"user_id": str(ctx.user_id)})

    app = Starlette(routes=table.starlette_routes(prefix=""))
    app.state.services = server.app.state.services
    return app, reached


async def call(app: Starlette, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        return await client.get(path, headers=headers or {})


async def test_a_handler_that_checks_nothing_is_still_refused(server: LiveServer, alice: UserHandle) -> None:
    app, reached = careless_app(server)
    with pytest.raises(Unauthenticated):
        await call(app, "/user-forgets")
    with pytest.raises(DomainError):  # a malformed token is refused too, not taken as anonymous
        await call(app, "/user-forgets", {"Authorization": "Bearer not-a-token"})
    with pytest.raises(Unauthenticated):
        await call(app, "/admin-forgets")
    with pytest.raises(Forbidden):  # a user's token is not an admin credential
        await call(app, "/admin-forgets", alice.headers)
    assert reached == []
    assert (await call(app, "/user-forgets", alice.headers)).status_code == 200
    assert (await call(app, "/admin-forgets", {"X-API-Key": ADMIN_API_KEY})).status_code == 200
    assert reached == ["user", "admin"]


async def test_the_handler_gets_the_registrys_context(server: LiveServer, alice: UserHandle) -> None:
    app, _ = careless_app(server)
    assert (await call(app, "/given", alice.headers)).json()["user_id"] == str(alice.user_id)
    # A public route reads no credential: a token sent anyway (even a stale one) is not looked at.
    assert (await call(app, "/public", alice.headers)).json() == {"principal": False}
    assert (await call(app, "/public", {"Authorization": "Bearer not-a-token"})).json() == {"principal": False}


def test_every_served_handler_takes_the_context_it_is_given() -> None:
    """One calling convention: the registry calls `handler(request, ctx)`, so a handler that fetched or built a
    context of its own would have to ignore the one its declaration produced (mypy checks the type too)."""
    odd = [
        f"{route.method} {route.path}: {route.handler.__module__}.{route.handler.__name__}"
        for route in api.routes
        if list(inspect.signature(route.handler).parameters) != ["request", "ctx"]
    ]
    assert odd == []


async def test_query_tokens_only_where_declared(server: LiveServer, alice: UserHandle) -> None:
    app, _ = careless_app(server)
    token = alice.headers["Authorization"].removeprefix("Bearer ")
    assert (await call(app, f"/stream?token={token}")).json()["user_id"]
    with pytest.raises(Unauthenticated):  # ?token= is not a credential on a route that did not declare it
        await call(app, f"/given?token={token}")


PLACEHOLDER = "00000000-0000-4000-8000-000000000000"


async def served_answers(client: httpx.AsyncClient, headers: dict[str, str], auth: str) -> list[tuple[str, str, int]]:
    """(method, path, status) of every served route declared `auth`, asked with `headers` and a body its handler
    would refuse (no field set): the refusal that comes back is the declaration's, not the handler's."""
    answers = []
    for route in (r for r in api.routes if r.auth == auth):
        url = "/api" + re.sub(r"\{[^}]+\}", PLACEHOLDER, route.path)
        body = {"json": {}} if route.method in ("POST", "PUT", "PATCH") else {}
        response = await client.request(route.method, url, headers=headers, timeout=10, **body)
        answers.append((route.method, route.path, response.status_code))
    return answers


async def test_every_user_route_refuses_a_caller_without_a_token(client: httpx.AsyncClient) -> None:
    answers = await served_answers(client, {}, "user")
    assert len(answers) > 50
    assert [a for a in answers if a[2] != 401] == []


async def test_every_admin_route_refuses_a_users_token(client: httpx.AsyncClient, alice: UserHandle) -> None:
    assert [a for a in await served_answers(client, {}, "admin") if a[2] != 401] == []
    answers = await served_answers(client, alice.headers, "admin")
    assert answers and [a for a in answers if a[2] != 403] == []
