"""Reading credentials off each transport: Authorization header, `?token=`, connection_init. Checking them is
resolvers/auth.py's (through runplane/transport_context.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def bearer_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


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
