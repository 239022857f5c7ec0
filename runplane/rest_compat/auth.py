"""/api/auth/*: the built-in issuer over REST (GraphQL twins in schema/auth.py)."""

from __future__ import annotations

from typing import Any

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from runplane.clock import iso
from runplane.models import AuthSession, User
from runplane.resolvers import auth as ops
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.bodies import Body, parse_body
from runplane.rest_compat.common import ok
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import SESSION_LIST, TOKENS, USER


class Register(Body):
    email: str = Field(max_length=ops.MAX_EMAIL, json_schema_extra={"format": "email"})
    password: str = Field(min_length=ops.MIN_PASSWORD, max_length=ops.MAX_PASSWORD)
    display_name: str | None = Field(None, max_length=ops.MAX_DISPLAY_NAME)
    abilities: list[str] | None = None


class Credentials(Body):
    email: str  # any string: a wrong one is a 401 like a wrong password (tests/auth/test_auth_bad_input.py)
    password: str = Field(max_length=ops.MAX_PASSWORD)
    abilities: list[str] | None = None


class Refresh(Body):
    refresh_token: str


TAG = "auth"


def tokens_json(pair: ops.TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": pair.token_type,
        "expires_in": pair.expires_in,
    }


def user_json(user: User, abilities: frozenset[str] | None = None) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "display_name": user.display_name,
        "is_admin": user.is_admin,
        "created_at": iso(user.created_at),
        "abilities": sorted(abilities or ()),
    }


def session_json(session: AuthSession, current: object) -> dict[str, Any]:
    return {
        "session_id": str(session.id),
        "abilities": list(session.abilities),
        "user_agent": session.user_agent,
        "ip_address": session.ip_address,
        "created_at": iso(session.created_at),
        "last_used_at": iso(session.last_used_at),
        "expires_at": iso(session.expires_at),
        "current": session.id == current,
    }


@api.add(
    "POST",
    "/auth/register",
    "Register a new user",
    auth="public",
    tag=TAG,
    body=Register,
    response=TOKENS,
    status=201,
    errors=(403, 409),
)  # registration disabled; the email is taken
async def register(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, Register)
    pair = await ops.register(
        ctx,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        abilities=body.abilities,
    )
    return ok(tokens_json(pair), status=201)


@api.add(
    "POST",
    "/auth/token",
    "Log in with email and password",
    auth="public",
    tag=TAG,
    body=Credentials,
    response=TOKENS,
    errors=(401,),
)
async def token(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, Credentials)
    pair = await ops.login(ctx, email=body.email, password=body.password, abilities=body.abilities)
    return ok(tokens_json(pair))


@api.add(
    "POST",
    "/auth/refresh",
    "Rotate a refresh token",
    auth="public",
    tag=TAG,
    body=Refresh,
    response=TOKENS,
    errors=(401,),
)
async def refresh(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, Refresh)
    pair = await ops.refresh(ctx, refresh_token=body.refresh_token)
    return ok(tokens_json(pair))


@api.add("POST", "/auth/logout", "Revoke the calling token's session", tag=TAG, status=204)
async def logout(request: Request, ctx: RequestContext) -> Response:
    await ops.logout(ctx)
    return Response(status_code=204)


@api.add("GET", "/auth/me", "The authenticated user", tag=TAG, response=USER)
async def me(request: Request, ctx: RequestContext) -> Response:
    return ok(user_json(await ops.me(ctx), ctx.principal.abilities if ctx.principal else None))


@api.add("GET", "/auth/sessions", "List the caller's live sessions", tag=TAG, response=SESSION_LIST)
async def sessions(request: Request, ctx: RequestContext) -> Response:
    current = ctx.principal.session_id if ctx.principal else None
    return ok({"sessions": [session_json(s, current) for s in await ops.list_sessions(ctx)]})


@api.add("DELETE", "/auth/sessions/{session_id}", "Revoke one of the caller's sessions", tag=TAG, status=204)
async def revoke_session(request: Request, ctx: RequestContext) -> Response:
    await ops.revoke_session(ctx, session_id=request.path_params["session_id"])
    return Response(status_code=204)
