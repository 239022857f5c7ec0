"""/api/openapi.json: valid OpenAPI 3.1, in step with the routes actually served, with the right auth."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from runplane.rest_compat.registry import api
from tests.support import LiveServer, UserHandle

# Served by the app itself, outside the registry (they describe the API, they are not part of it).
DOC_ROUTES = {("GET", "/api/openapi.json"), ("GET", "/api/docs")}
SECURITY: dict[str, list[dict[str, list[str]]]] = {"public": [], "webhook": [], "user": [{"bearer": []}], "admin": [{"apiKey": []}, {"bearer": []}]}


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
    routes = [(path, m) for path, item in document["paths"].items() for m, op in item.items() if {"queryToken": []} in op["security"]]
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
