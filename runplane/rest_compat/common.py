"""Parsing and shaping shared by REST handlers: JSON bodies, lists, `{"detail"}` errors. (The
caller's context is built by the registry, rest_compat/registry.py, from each route's declared auth.)"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runplane.errors import (
    BadRequest,
    DomainError,
    InvalidInput,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
)
from runplane.resolvers.pagination import Page
from runplane.services import Services


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object: 400 for malformed JSON, 422 for another JSON type."""
    raw = await request.body()
    if not raw.strip():
        if required:
            raise BadRequest("Request body must be a JSON object")
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested past the interpreter's limit
        raise BadRequest("Malformed JSON body") from None
    if not isinstance(data, dict):
        raise InvalidInput("Request body must be a JSON object")
    return data


def list_response(items: list[dict[str, Any]], page: Page[Any], name: str, *, bare: bool) -> JSONResponse:
    """runplane's `{name: [...], "next_cursor"}`, or the original backend's bare array (the cheatcode dialect),
    whose next cursor travels in `X-Next-Cursor`."""
    cursor = page.end_cursor if page.has_next_page else None
    if bare:
        return JSONResponse(items, headers={"X-Next-Cursor": cursor} if cursor else None)
    return JSONResponse({name: items, "next_cursor": cursor})


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=headers)


def error_response(exc: DomainError, request_id: str | None = None, *, cheatcode: bool = False) -> Response:
    headers: dict[str, str] = {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="runplane"'
    if isinstance(exc, (RateLimited, ServiceUnavailable)) and exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    # `detail` is what cheatcode clients read (`message` too: the web app's initiate and fetch helpers read
    # errorData.message); code and extra fields (field, retry_after...) help others.
    body: dict[str, Any] = {**exc.details(), "detail": exc.message, "message": exc.message, "code": exc.code}
    if cheatcode and isinstance(exc, QuotaExceeded):
        body["detail"] = insufficient_credits_detail(exc)
    return JSONResponse(body, status_code=exc.status, headers=headers)


def insufficient_credits_detail(exc: QuotaExceeded) -> dict[str, Any]:
    """The original backend's 402: `detail` is an object the web app's billing dialog reads (`error`, `message`,
    `credits_remaining`), not a string (cheatcode-original-behaviour.md, "Errors")."""
    extra = exc.details()
    remaining = None
    if isinstance(extra.get("tokens_limit"), int) and isinstance(extra.get("tokens_used"), int):
        remaining = max(0, extra["tokens_limit"] - extra["tokens_used"])
    error = "insufficient_credits" if extra.get("limit") == "tokens" else f"{extra.get('limit', 'plan')}_limit_reached"
    return {**extra, "error": error, "message": exc.message, "credits_remaining": remaining}
