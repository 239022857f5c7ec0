"""The RequestContext of one HTTP request or WebSocket, shared by both transports (GraphQL at /graphql and the
REST dialects under /api): who calls (the first credential present), from where, on which connection.

It sits above the operations it calls (resolvers/auth.py checks the credential) and below both transports, so
neither transport builds its context through the other."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from runplane.auth.credentials import bearer_from_header
from runplane.errors import DomainError
from runplane.resolvers import auth as auth_ops
from runplane.resolvers.context import RequestContext
from runplane.services import Services


def request_context(services: Services, request: HTTPConnection) -> RequestContext:
    """An anonymous context carrying the request id, client address and the connection's stream slot."""
    request_id = getattr(request.state, "request_id", None)
    client = request.client.host if request.client else ""
    ctx = RequestContext(services=services, user_agent=request.headers.get("user-agent", ""), client_ip=client)
    ctx.connection = request.scope.get("state", {}).get("connection")
    if request_id:
        ctx.request_id = request_id
    return ctx


async def authenticate_context(
    ctx: RequestContext, *, authorization: str | None, api_key: str | None = None, query_token: str | None = None
) -> RequestContext:
    """Fill ctx.principal from the first credential present; remember a failure in ctx.auth_error (operations
    needing a user report it; public ones such as login still work)."""
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
