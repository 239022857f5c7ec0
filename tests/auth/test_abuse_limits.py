"""Doors strangers knock on, against a `runplane serve` with its defaults: registrations per client address,
wrong admin keys per address, WebSocket operations counted like HTTP requests, and the headers a browser app
needs to read a 429 (CORS exposes Retry-After and X-Request-Id). Addresses come from X-Forwarded-For, which
uvicorn trusts from 127.0.0.1."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.spawned import Process, spawn_server
from tests.streams.helpers import graphql_socket, next_message
from tests.support import register_user

ADMIN_KEY = "abuse-admin-key-" + "k" * 32
ORIGIN = "http://localhost:5173"


@pytest.fixture(scope="module")
async def defaults(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Process]:
    settings = {"registrations_per_hour": None, "admin_api_key": ADMIN_KEY, "cors_origins": ORIGIN}  # None: default
    async with spawn_server(tmp_path_factory.mktemp("defaults"), settings, name="defaults") as proc:
        yield proc


@pytest.fixture
async def http(defaults: Process) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=defaults.base_url, timeout=30) as client:
        yield client


def address() -> dict[str, str]:
    value = uuid.uuid4().int
    return {"X-Forwarded-For": f"10.{value % 250}.{value // 250 % 250}.{value // 62500 % 250 + 1}"}


async def test_registrations_are_limited_per_address(http: httpx.AsyncClient) -> None:
    sender = address()

    async def register(headers: dict[str, str]) -> httpx.Response:
        body = {"email": f"new-{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse battery"}
        return await http.post("/api/auth/register", json=body, headers=headers)

    for _ in range(10):  # RUNPLANE_REGISTRATIONS_PER_HOUR's default
        assert (await register(sender)).status_code == 201
    refused = await register(sender)
    assert refused.status_code == 429 and refused.json()["code"] == "RATE_LIMITED", refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 3600
    assert (await register(address())).status_code == 201  # another address is not affected


async def test_wrong_admin_keys_are_throttled_per_address(http: httpx.AsyncClient) -> None:
    guesser = address()
    for n in range(10):  # RUNPLANE_ADMIN_KEY_FAILURES_PER_MINUTE's default
        wrong = await http.get("/api/billing/admin/quota-status", headers={**guesser, "X-API-Key": f"guess-{n}"})
        assert wrong.status_code == 401, wrong.text
    throttled = await http.get("/api/billing/admin/quota-status", headers={**guesser, "X-API-Key": ADMIN_KEY})
    assert throttled.status_code == 429, throttled.text  # even the right key waits out the window there
    elsewhere = await http.get("/api/billing/admin/quota-status", headers={**address(), "X-API-Key": ADMIN_KEY})
    assert elsewhere.status_code != 429 and elsewhere.status_code != 401, elsewhere.text


async def test_websocket_operations_count_against_the_request_limit(defaults: Process, http: httpx.AsyncClient) -> None:
    user = await register_user(http)  # its GET /api/auth/me is request 1; the socket's connection request 2
    async with graphql_socket(defaults.ws_url, user.access_token) as ws:
        answered = 0
        for n in range(70):
            await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": "{ __typename }"}}))
            message = await next_message(ws, str(n))
            if message["type"] == "error":
                (error,) = message["payload"]
                assert error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retry_after"] >= 1
                break
            answered += 1
        assert answered == 58, answered  # 60 a minute: the operations after the 58th are refused
    over_http = await http.post("/graphql", json={"query": "{ __typename }"}, headers=user.headers)
    assert over_http.status_code == 429  # one budget for both transports


async def test_browsers_can_read_retry_after_and_the_request_id(http: httpx.AsyncClient) -> None:
    user = await register_user(http)
    headers = {**user.headers, "Origin": ORIGIN}
    for _ in range(60):
        answer = await http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        if answer.status_code == 429:
            break
    assert answer.status_code == 429
    exposed = {h.strip().lower() for h in answer.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "x-request-id"} <= exposed
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
