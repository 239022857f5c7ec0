"""/api/openapi.json: valid OpenAPI 3.1, in step with the routes actually served, with the right auth."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from runplane.rest_compat.registry import api
from tests.conftest import ADMIN_API_KEY
from tests.support import LiveServer, UserHandle

# Served by the app itself, outside the registry (they describe the API, they are not part of it).
DOC_ROUTES = {("GET", "/api/openapi.json"), ("GET", "/api/docs")}
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "public": [],
    "webhook": [],
    "user": [{"bearer": []}],
    "admin": [{"apiKey": []}, {"bearer": []}],
}


@pytest.fixture
async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items() for method in item}


def served(server: LiveServer) -> set[tuple[str, str]]:
    pairs = set()
    for route in server.app.routes:
        if isinstance(route, Route) and route.path.startswith("/api"):
            pairs |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return pairs


async def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    from openapi_spec_validator import validate  # test extra: openapi-spec-validator

    assert document["openapi"].startswith("3.1")
    validate(document)  # raises with the first violation


async def test_every_served_route_is_documented_and_nothing_else(document: dict[str, Any], server: LiveServer) -> None:
    assert served(server) - DOC_ROUTES == documented(document)
    assert {(r.method, "/api" + r.path) for r in api.routes} == documented(document)


async def test_operation_ids_are_unique_and_path_parameters_declared(document: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for path, item in document["paths"].items():
        for op in item.values():
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == set(re.findall(r"{([^}]+)}", path)), path


async def test_each_operation_documents_its_auth(document: dict[str, Any]) -> None:
    for route in api.routes:
        op = document["paths"]["/api" + route.path][route.method.lower()]
        assert op["x-auth"] == route.auth
        takes_query_token = any(p["name"] == "token" and p["in"] == "query" for p in route.query)
        expected = SECURITY[route.auth] + ([{"queryToken": []}] if takes_query_token else [])
        assert op["security"] == expected, (route.method, route.path)
        if route.auth in {"user", "admin"}:
            assert {"401", "403"} <= set(op["responses"]), (route.method, route.path)


async def test_query_token_routes_accept_the_token_in_the_query(
    client: httpx.AsyncClient, document: dict[str, Any], alice: UserHandle
) -> None:
    """Routes documented with `queryToken` really authenticate `?token=`: a bad one is 401, a good one passes."""
    routes = [
        (path, m)
        for path, item in document["paths"].items()
        for m, op in item.items()
        if {"queryToken": []} in op["security"]
    ]
    assert routes, "the SSE stream route documents ?token="
    for path, method in routes:
        response = await client.request(method.upper(), concrete(path) + "?token=garbage")
        assert response.status_code == 401, (path, response.text)
        response = await client.request(method.upper(), concrete(path), params={"token": alice.access_token})
        assert response.status_code == 404, (path, response.text)  # authenticated; the random id is unknown


def concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", str(uuid.uuid4()), path)


async def test_documented_auth_is_what_the_server_enforces(client: httpx.AsyncClient, document: dict[str, Any]) -> None:
    """Without credentials: every `user`/`admin` operation answers 401, no public one does."""
    for path, item in document["paths"].items():
        for method, op in item.items():
            response = await client.request(method.upper(), concrete(path), json={})
            if op["security"]:
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["www-authenticate"].startswith("Bearer")
                assert isinstance(response.json()["detail"], str)
            else:
                assert response.status_code != 401, (method, path, response.text)


async def test_docs_page_serves_html_pointing_at_the_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/api/openapi.json" in response.text and "<html" in response.text.lower()


async def test_declared_success_status_matches_the_registry(document: dict[str, Any]) -> None:
    for route in api.routes:
        responses = document["paths"]["/api" + route.path][route.method.lower()]["responses"]
        assert str(route.status) in responses and route.status < 300


# --- real answers against the document (each case a schema violation the fuzzer, tests/fuzz, once found) ---


def assert_documented(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    """The status is declared for the operation and a JSON body fits the schema declared for that status."""
    from jsonschema import Draft202012Validator

    declared = document["paths"]["/api" + path][method.lower()]["responses"]
    assert str(response.status_code) in declared, (method, path, response.status_code, sorted(declared))
    content = declared[str(response.status_code)].get("content", {}).get("application/json")
    if content is not None:
        schema = content["schema"]
        if "$ref" in schema:
            schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        errors = [e.message for e in Draft202012Validator(schema).iter_errors(response.json())]
        assert not errors, (method, path, errors, response.text[:300])


async def test_nullable_fields_are_documented_nullable(
    client: httpx.AsyncClient, document: dict[str, Any], alice: UserHandle
) -> None:
    history = await client.get("/api/billing/usage-history", headers=alice.headers)  # totals.date is null
    assert_documented(document, "GET", "/billing/usage-history", history)
    project = (await client.post("/api/projects", json={"name": "never deployed"}, headers=alice.headers)).json()[
        "project_id"
    ]
    for kind in ("status", "live-status"):  # deployment_id is null before the first deployment
        answer = await client.get(f"/api/project/{project}/deployment/{kind}", headers=alice.headers)
        assert answer.json()["deployment_id"] is None
        assert_documented(document, "GET", "/project/{project_id}/deployment/" + kind, answer)


async def test_event_streams_document_one_event(document: dict[str, Any]) -> None:
    """OpenAPI 3.1: the `schema` of text/event-stream describes each event (fields id, event, data), not a string."""
    streams = [
        op["responses"]["200"]["content"]["text/event-stream"]["schema"]
        for item in document["paths"].values()
        for op in item.values()
        if "text/event-stream" in op["responses"].get("200", {}).get("content", {})
    ]
    assert len(streams) == 3
    for schema in streams:
        assert schema["type"] == "object" and {"id", "event", "data"} <= set(schema["properties"])


async def test_error_statuses_routes_answer_are_documented(
    client: httpx.AsyncClient, document: dict[str, Any], alice: UserHandle
) -> None:
    taken = await client.post("/api/auth/register", json={"email": alice.email, "password": "another password"})
    assert_documented(document, "POST", "/auth/register", taken)
    assert taken.status_code == 409
    wrong = await client.post("/api/auth/token", json={"email": alice.email, "password": "not the password"})
    assert_documented(document, "POST", "/auth/token", wrong)
    stale = await client.post("/api/auth/refresh", json={"refresh_token": "garbage"})
    assert_documented(document, "POST", "/auth/refresh", stale)
    unknown = str(uuid.uuid4())
    assert_documented(
        document, "GET", "/threads", await client.get(f"/api/threads?project_id={unknown}", headers=alice.headers)
    )
    assert_documented(
        document,
        "POST",
        "/threads",
        await client.post("/api/threads", json={"project_id": unknown}, headers=alice.headers),
    )
    assert_documented(
        document, "GET", "/feature-flags", await client.get("/api/feature-flags", headers=alice.headers)
    )  # disabled: 404
    assert_documented(
        document,
        "POST",
        "/billing/openrouter-key/test",
        await client.post("/api/billing/openrouter-key/test", headers=alice.headers),
    )
    for path in ("/composio/health", "/composio/connections"):  # Composio is not configured here: 503
        assert_documented(document, "GET", path, await client.get("/api" + path, headers=alice.headers))
    assert_documented(document, "POST", "/webhooks/stripe", await client.post("/api/webhooks/stripe", json={}))
    assert_documented(
        document,
        "POST",
        "/send-welcome-email",
        await client.post("/api/send-welcome-email", json={}, headers=alice.headers),
    )
    admin = {"X-API-Key": ADMIN_API_KEY}
    no_user = await client.post("/api/billing/admin/reset-quotas", json={"user_id": unknown}, headers=admin)
    assert no_user.status_code == 404
    assert_documented(document, "POST", "/billing/admin/reset-quotas", no_user)


async def test_every_route_with_a_body_documents_413(document: dict[str, Any]) -> None:
    for route in api.routes:
        if route.body is not None:
            assert "413" in document["paths"]["/api" + route.path][route.method.lower()]["responses"], (
                route.method,
                route.path,
            )
