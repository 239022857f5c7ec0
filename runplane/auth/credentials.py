"""Reading credentials off each transport: Authorization header, X-API-Key, `?token=`, connection_init."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runplane.errors import DomainError
from runplane.resolvers import auth as auth_ops
from runplane.resolvers.context import RequestContext


def bearer_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


async def authenticate_context(
    ctx: RequestContext, *, authorization: str | None, api_key: str | None = None, query_token: str | None = None
) -> RequestContext:
    """Fill ctx.principal from the first credential present; remember a failure in ctx.auth_error."""
    try:
        token = bearer_from_header(authorization)
        if token is None and query_token:
            token = query_token
        if token is not None:
            ctx.principal = await auth_ops.authenticate_bearer(ctx.services, token)
        elif api_key:
            ctx.principal = await auth_ops.authenticate_api_key(ctx, api_key)
    except DomainError as exc:
        ctx.auth_error = exc
    return ctx


def token_from_connection_params(params: Mapping[str, Any] | None) -> str | None:
    """graphql-ws clients put the token in connection_init: `Authorization`, `authorization`, `authToken` or `token`."""
    if not params:
        return None
    for key in ("Authorization", "authorization"):
        value = params.get(key)
        if isinstance(value, str):
            return value if value.lower().startswith("bearer ") else f"Bearer {value}"
    headers = params.get("headers")
    if isinstance(headers, Mapping):
        return token_from_connection_params(headers)
    for key in ("authToken", "token", "access_token"):
        value = params.get(key)
        if isinstance(value, str):
            return f"Bearer {value}"
    return None
