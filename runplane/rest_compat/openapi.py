"""The OpenAPI 3.1 document of /api, built from the route registry, and a docs page."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from runplane.rest_compat.registry import ApiRoute, RouteTable
from runplane.rest_compat.schemas import ERROR

PATH_PARAM = re.compile(r"{([^}]+)}")
ERROR_RESPONSE = {
    "description": "Error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def build_openapi(table: RouteTable) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in table.routes:
        paths.setdefault("/api" + route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "runplane REST compatibility API",
            "version": "1.0.0",
            "description": "The documented /api routes, served on the same resolvers as /graphql.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "queryToken": {"type": "apiKey", "in": "query", "name": "token"},
            },
        },
    }


def _operation(route: ApiRoute) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": f"{route.method.lower()}_{re.sub(r'[^a-zA-Z0-9]+', '_', route.path).strip('_')}",
        "parameters": _parameters(route),
        "responses": _responses(route),
        "x-auth": route.auth,
    }
    op["security"] = {"public": [], "webhook": [], "user": [{"bearer": []}], "admin": [{"apiKey": []}, {"bearer": []}]}[
        route.auth
    ]
    if route.auth == "user" and any(param["name"] == "token" and param["in"] == "query" for param in route.query):
        op["security"] = [*op["security"], {"queryToken": []}]  # SSE: EventSource cannot send headers
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {route.content_type: {"schema": route.body}}}
    return op


def _parameters(route: ApiRoute) -> list[dict[str, Any]]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAM.findall(route.path)
    ]
    return params + route.query


def _responses(route: ApiRoute) -> dict[str, Any]:
    success: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        media = route.response.get("x-media-type", "application/json")
        success["content"] = {media: {"schema": route.response}}
    responses: dict[str, Any] = {
        str(route.status): success,
        "400": ERROR_RESPONSE,
        "422": ERROR_RESPONSE,
        "429": ERROR_RESPONSE,
    }
    if route.auth in {"user", "admin"}:
        responses.update({"401": ERROR_RESPONSE, "403": ERROR_RESPONSE})
    if "{" in route.path:
        responses["404"] = ERROR_RESPONSE
    if route.body is not None:
        responses["413"] = ERROR_RESPONSE  # BodyLimitMiddleware, before the handler
    responses.update({str(status): ERROR_RESPONSE for status in route.errors})
    responses.update(route.other_responses)
    return responses


def openapi_endpoint(table: RouteTable) -> Callable[[Request], Awaitable[Response]]:
    document: dict[str, Any] | None = None

    async def endpoint(request: Request) -> Response:
        nonlocal document
        document = document or build_openapi(table)
        return JSONResponse(document)

    return endpoint


# Swagger UI from runplane/static/vendor (a pinned npm build): the page works with no internet.
DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>runplane API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui-dist/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/static/vendor/swagger-ui-dist/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/api/openapi.json", dom_id: "#ui"});</script>
<noscript>The OpenAPI document is at <a href="/api/openapi.json">/api/openapi.json</a>.</noscript>
</body></html>"""


async def docs_page(request: Request) -> Response:
    return HTMLResponse(DOCS_HTML)
