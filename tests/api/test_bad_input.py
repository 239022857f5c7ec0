"""Bad input on the REST routes: each kind of mistake gets its documented status and a `{"detail"}`
body, and a sweep over every registered route with garbage never gets a 5xx."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from runplane.auth.tokens import AccessClaims, issue_access_token
from runplane.rest_compat.registry import ApiRoute, api
from tests.support import LiveServer, UserHandle, register_user

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def concrete(path: str, value: str | None = None) -> str:
    return "/api" + re.sub(r"{[^}]+}", lambda _: value or str(uuid.uuid4()), path)


def assert_error(response: httpx.Response, status: int, context: object = None) -> dict[str, Any]:
    assert response.status_code == status, (context, response.status_code, response.text)
    body: dict[str, Any] = response.json()
    assert isinstance(body["detail"], str) and body["detail"], (context, body)
    return body


def body_routes() -> list[ApiRoute]:
    """Routes that read a JSON body from a signed-in user or anyone (webhooks check a signature first)."""
    return [
        r
        for r in api.routes
        if r.body is not None and r.auth in {"user", "public"} and r.content_type == "application/json"
    ]


SAMPLES = {"string": "x", "integer": 1, "number": 1, "boolean": True, "array": ["x"], "object": {}}


def valid_shape(route: ApiRoute) -> dict[str, Any]:
    """A request of the documented shape (body, required query parameters), so that only the path decides the
    answer: a required parameter is checked before the lookup, with the same 422 for every caller."""
    required = [p for p in route.query if p.get("required")]
    params = {"params": {p["name"]: "a.txt" for p in required}} if required else {}
    return {**params, **_valid_body(route)}


def _valid_body(route: ApiRoute) -> dict[str, Any]:
    if route.content_type.startswith("multipart/"):
        return {"files": {"file": ("a.txt", b"x")}, "data": {"path": "a.txt"}}
    if route.body is None or route.method not in WRITE_METHODS:
        return {}
    properties = route.body.get("properties") or {}

    def sample(schema: dict[str, Any]) -> Any:
        if "const" in schema or "enum" in schema:
            return schema.get("const", (schema.get("enum") or ["x"])[0])
        if "anyOf" in schema:
            return sample(schema["anyOf"][0])
        kind = schema.get("type")
        return SAMPLES.get(str(kind[0] if isinstance(kind, list) else kind), "x")

    return {"json": {name: sample(schema) for name, schema in properties.items()}}


def limit_for(server: LiveServer, path: str) -> int:
    from runplane.middleware import BodyLimitMiddleware

    [middleware] = [m for m in server.app.user_middleware if m.cls is BodyLimitMiddleware]
    limit: int = middleware.kwargs["limit_for"](path)
    return limit


# Registering costs an argon2 hash (~0.5 s on a small CI machine): users that only get refused are shared.


@pytest.fixture(scope="module")
async def writer(server: LiveServer) -> UserHandle:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        return await register_user(http)


@pytest.fixture(scope="module")
async def owned(server: LiveServer, writer: UserHandle) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        project = (await http.post("/api/projects", json={"name": "mine"}, headers=writer.headers)).json()["project_id"]
        thread = (await http.post("/api/threads", json={"project_id": project}, headers=writer.headers)).json()[
            "thread_id"
        ]
    return {"project_id": project, "thread_id": thread}


async def send_raw(
    client: httpx.AsyncClient, route: ApiRoute, raw: bytes, user: UserHandle, path_value: str | None = None
) -> httpx.Response:
    headers = {**user.headers, "content-type": "application/json"}
    return await client.request(route.method, concrete(route.path, path_value), content=raw, headers=headers)


# --- JSON shape ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", body_routes(), ids=lambda r: f"{r.method} {r.path}")
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, writer: UserHandle, owned: dict[str, str], route: ApiRoute
) -> None:
    for raw in (b"{", b'{"name": "x",}', b"{'name': 'x'}", b"\xff\xfe\xfa", b"[" * 100_000, b"nul"):
        assert_error(await send_raw(client, route, raw, writer, owned["thread_id"]), 400, raw[:20])


@pytest.mark.parametrize("route", body_routes(), ids=lambda r: f"{r.method} {r.path}")
async def test_json_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, writer: UserHandle, owned: dict[str, str], route: ApiRoute
) -> None:
    for raw in (b"[]", b'[{"name": "x"}]', b'"name"', b"42", b"null", b"true", b"1e999"):
        assert_error(await send_raw(client, route, raw, writer, owned["thread_id"]), 422, raw)


# --- fields: (method, path, body, status, field named in the answer) -----------------------------------

LONG = 100_001
FIELD_CASES: list[tuple[str, str, dict[str, Any], int, str | None]] = [
    ("POST", "/projects", {}, 422, "name"),
    ("POST", "/projects", {"name": None}, 422, "name"),
    ("POST", "/projects", {"name": 5}, 422, "name"),
    ("POST", "/projects", {"name": ["x"]}, 422, "name"),
    ("POST", "/projects", {"name": {"$ne": ""}}, 422, "name"),
    ("POST", "/projects", {"name": ""}, 422, "name"),
    ("POST", "/projects", {"name": "x" * 201}, 422, "name"),
    ("POST", "/projects", {"name": "a\u0000b"}, 422, "name"),
    ("POST", "/projects", {"name": "\ud800"}, 422, "name"),  # a lone surrogate: valid JSON, not storable text
    ("POST", "/projects", {"name": "ok", "description": 5}, 422, "description"),
    ("POST", "/projects", {"name": "ok", "description": "d" * 10_001}, 422, "description"),
    ("POST", "/projects", {"name": "ok", "description": "\udfff"}, 422, "description"),
    ("POST", "/threads", {}, 422, "project_id"),
    ("POST", "/threads", {"project_id": ""}, 422, "project_id"),
    ("POST", "/threads", {"project_id": 5}, 422, "project_id"),
    ("POST", "/threads", {"project_id": ["{project_id}"]}, 422, "project_id"),
    ("POST", "/threads", {"project_id": {"id": "{project_id}"}}, 422, "project_id"),
    ("POST", "/threads", {"project_id": "not-a-uuid"}, 404, None),
    ("POST", "/threads", {"project_id": "{project_id}", "title": 5}, 422, "title"),
    ("POST", "/threads", {"project_id": "{project_id}", "title": "t" * 201}, 422, "title"),
    ("POST", "/threads", {"project_id": "{project_id}", "title": "\ud800"}, 422, "title"),
    ("POST", "/thread/{thread_id}/agent/start", {"prompt": 5}, 422, "prompt"),
    ("POST", "/thread/{thread_id}/agent/start", {"prompt": "p" * LONG}, 422, "prompt"),
    ("POST", "/thread/{thread_id}/agent/start", {"prompt": "ok", "model": 5}, 422, "model"),
    ("POST", "/thread/{thread_id}/agent/start", {"prompt": "ok", "idempotency_key": "k" * 201}, 422, "idempotency_key"),
    ("POST", "/agent/initiate", {}, 422, "prompt"),
    ("POST", "/agent/initiate", {"prompt": ""}, 422, "prompt"),
    ("POST", "/agent/initiate", {"prompt": 5}, 422, "prompt"),
    ("POST", "/agent/initiate", {"prompt": "p" * LONG}, 422, "prompt"),
    ("POST", "/auth/register", {}, 422, "email"),
    ("POST", "/auth/register", {"email": 5, "password": "long enough"}, 422, "email"),
    ("POST", "/auth/register", {"email": "a@" + "b" * 320 + ".com", "password": "long enough"}, 422, "email"),
    ("POST", "/auth/register", {"email": "not-an-email", "password": "long enough"}, 422, "email"),
    ("POST", "/auth/register", {"email": "x@example.com", "password": "short"}, 422, "password"),
    ("POST", "/auth/register", {"email": "x@example.com", "password": "p" * 1025}, 422, "password"),
    ("POST", "/auth/register", {"email": "x@example.com", "password": 12345678}, 422, "password"),
    (
        "POST",
        "/auth/register",
        {"email": "x@example.com", "password": "long enough", "abilities": "admin"},
        422,
        "abilities",
    ),
    (
        "POST",
        "/auth/register",
        {"email": "x@example.com", "password": "long enough", "abilities": ["nope"]},
        422,
        "abilities",
    ),
    ("POST", "/auth/token", {}, 422, None),
    ("POST", "/auth/token", {"email": 5, "password": 5}, 422, None),
    ("POST", "/auth/refresh", {}, 422, "refresh_token"),
    ("POST", "/auth/refresh", {"refresh_token": 5}, 422, "refresh_token"),
]


def fill(value: Any, owned: dict[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in owned:
        return owned[value[1:-1]]
    if isinstance(value, list):
        return [fill(v, owned) for v in value]
    if isinstance(value, dict):
        return {k: fill(v, owned) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", FIELD_CASES, ids=lambda c: f"{c[0]} {c[1]} {json.dumps(c[2])[:50]}")
async def test_field_errors(
    client: httpx.AsyncClient,
    writer: UserHandle,
    owned: dict[str, str],
    case: tuple[str, str, dict[str, Any], int, str | None],
) -> None:
    method, path, body, status, field = case
    url = "/api" + path.format(**owned)
    raw = json.dumps(fill(body, owned)).encode()  # ensure_ascii: lone surrogates travel as \\ud800 escapes
    response = await client.request(
        method, url, content=raw, headers={**writer.headers, "content-type": "application/json"}
    )
    answer = assert_error(response, status, case)
    if field is not None:
        assert answer.get("field") == field, answer


async def test_field_errors_leave_nothing_behind(client: httpx.AsyncClient, alice: UserHandle) -> None:
    project = (await client.post("/api/projects", json={"name": "mine"}, headers=alice.headers)).json()["project_id"]
    thread = (await client.post("/api/threads", json={"project_id": project}, headers=alice.headers)).json()[
        "thread_id"
    ]
    mine = {"project_id": project, "thread_id": thread}
    for method, path, body, _, _ in FIELD_CASES:
        if not path.startswith("/auth"):
            raw = json.dumps(fill(body, mine)).encode()
            await client.request(
                method,
                "/api" + path.format(**mine),
                content=raw,
                headers={**alice.headers, "content-type": "application/json"},
            )
    assert [p["name"] for p in (await client.get("/api/projects", headers=alice.headers)).json()["projects"]] == [
        "mine"
    ]
    assert [t["thread_id"] for t in (await client.get("/api/threads", headers=alice.headers)).json()["threads"]] == [
        thread
    ]
    assert (await client.get(f"/api/thread/{thread}/agent-runs", headers=alice.headers)).json()["agent_runs"] == []


async def test_surrogates_through_graphql_are_input_errors(client: httpx.AsyncClient, writer: UserHandle) -> None:
    document = (
        "mutation($i: CreateProjectInput!) { createProject(input: $i) { __typename ... on InputError { field } } }"
    )
    raw = json.dumps({"query": document, "variables": {"i": {"name": "bad \ud800 name"}}}).encode()
    response = await client.post(
        "/graphql", content=raw, headers={**writer.headers, "content-type": "application/json"}
    )
    assert response.json()["data"]["createProject"] == {"__typename": "InputError", "field": "name"}


# --- paths and query strings ---------------------------------------------------------------------------

BAD_IDS = [
    "not-a-uuid",
    "0",
    "-1",
    "%00",
    "%ff%fe",
    "..",
    "a" * 300,
    "%E2%98%83",
    "%20",
    "12345678-1234-1234-1234-1234567890123",
]
NOT_IDS = {"country_code", "session_name", "slug", "flag_name"}  # path parameters that name no stored object


def id_routes() -> list[ApiRoute]:
    return [r for r in api.routes if r.auth == "user" and set(re.findall(r"{([^}]+)}", r.path)) - NOT_IDS]


@pytest.mark.parametrize("route", id_routes(), ids=lambda r: f"{r.method} {r.path}")
async def test_bad_ids_in_paths_are_404(client: httpx.AsyncClient, writer: UserHandle, route: ApiRoute) -> None:
    for bad in BAD_IDS:
        response = await client.request(
            route.method, concrete(route.path, bad), headers=writer.headers, **valid_shape(route)
        )
        if deliberate(response):  # an integration that is not configured here answers 503 before any lookup
            continue
        assert_error(response, 404, bad)


async def test_bad_ids_in_query_strings_are_404(client: httpx.AsyncClient, writer: UserHandle) -> None:
    for bad in BAD_IDS:
        assert_error(await client.get(f"/api/threads?project_id={bad}", headers=writer.headers), 404, bad)


LIST_ROUTES = ["/api/projects", "/api/threads", "/api/thread/{thread_id}/agent-runs"]


@pytest.mark.parametrize("path", LIST_ROUTES)
async def test_bad_cursors_and_limits_are_422(
    client: httpx.AsyncClient, writer: UserHandle, owned: dict[str, str], path: str
) -> None:
    url = path.format(**owned)
    for cursor in (
        "garbage",
        "%%%",
        "bm90IGEgY3Vyc29y",
        "MjAyMC0wMS0wMVQwMDowMDowMHx4",
        "MjAyMC0wMS0wMVQwMDowMDowMHw1ZjFiMzM0Zi1kNmU4LTQ4ZjYtYjQ2MS1mNDA5YjkzZTE4NDI",
        "a" * 5000,
    ):
        answer = assert_error(await client.get(url, params={"cursor": cursor}, headers=writer.headers), 422, cursor)
        assert answer["field"] == "after"
    for limit in ("0", "101", "-1", "abc", "1.5", "1e3", "9" * 40, " "):
        answer = assert_error(await client.get(url, params={"limit": limit}, headers=writer.headers), 422, limit)
        assert answer["field"] == "limit"
    assert (await client.get(url, params={"limit": "100"}, headers=writer.headers)).status_code == 200


async def test_event_polling_rejects_bad_after_and_limit(
    client: httpx.AsyncClient, writer: UserHandle, owned: dict[str, str]
) -> None:
    started = await client.post(
        f"/api/thread/{owned['thread_id']}/agent/start", json={"prompt": "hi"}, headers=writer.headers
    )
    assert started.status_code == 200, started.text
    url = f"/api/agent-run/{started.json()['agent_run_id']}/events"
    for params in ({"after": "-1"}, {"after": "abc"}, {"limit": "0"}, {"limit": "1001"}, {"after": "9" * 40}):
        assert_error(await client.get(url, params=params, headers=writer.headers), 422, params)


# --- sizes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", body_routes(), ids=lambda r: f"{r.method} {r.path}")
async def test_oversized_bodies_are_413(
    client: httpx.AsyncClient, server: LiveServer, writer: UserHandle, route: ApiRoute
) -> None:
    limit = limit_for(server, concrete(route.path))
    if limit > server.settings.max_body_bytes:
        pytest.skip(f"shares its path with an upload route: capped at {limit} bytes")
    big = b'{"name": "' + b"x" * limit + b'"}'
    headers = {**writer.headers, "content-type": "application/json"}
    declared = await client.request(route.method, concrete(route.path), content=big, headers=headers)
    assert_error(declared, 413, "content-length")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(big), 32 * 1024):
            yield big[start : start + 32 * 1024]

    streamed = await client.request(route.method, concrete(route.path), content=chunks(), headers=headers)
    assert "content-length" not in streamed.request.headers
    assert_error(streamed, 413, "chunked")
    at_limit = b'{"name": "' + b"x" * (limit - 20) + b'"}'
    assert (
        await client.request(route.method, concrete(route.path), content=at_limit, headers=headers)
    ).status_code != 413


async def test_a_lying_content_length_is_refused(server: LiveServer) -> None:
    """httpx will not send this; a raw socket does."""
    for length in (b"not-a-number", b"-5", b"99999999999999999999"):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"POST /api/projects HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: "
            + length
            + b"\r\n\r\n{}"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status_line.split()[1] in {b"400", b"413"}, (length, status_line)


# --- credentials ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def bad_tokens(server: LiveServer, writer: UserHandle) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        login = await http.post("/api/auth/token", json={"email": writer.email, "password": writer.password})
        revoked = login.json()["access_token"]
        assert (await http.post("/api/auth/logout", headers={"Authorization": f"Bearer {revoked}"})).status_code == 204
    me = writer
    claims = AccessClaims(uuid.UUID(me.user_id), uuid.uuid4(), ["projects:read"])
    return {
        "none": "",
        "garbage": "Bearer garbage",
        "empty bearer": "Bearer",
        "basic": "Basic dXNlcjpwYXNz",
        "three dots": "Bearer a.b.c",
        "huge": "Bearer " + "x" * 9000,
        "expired": "Bearer "
        + issue_access_token(server.settings, AccessClaims(uuid.UUID(me.user_id), uuid.uuid4(), []), ttl_seconds=-60),
        "unknown session": "Bearer " + issue_access_token(server.settings, claims),
        "revoked session": "Bearer " + revoked,
    }


@pytest.mark.parametrize("route", [r for r in api.routes if r.auth == "user"], ids=lambda r: f"{r.method} {r.path}")
async def test_user_routes_want_a_valid_token(
    client: httpx.AsyncClient, bad_tokens: dict[str, str], route: ApiRoute
) -> None:
    for name, header in bad_tokens.items():
        headers = {"Authorization": header} if header else {}
        response = await client.request(route.method, concrete(route.path), json={}, headers=headers)
        assert_error(response, 401, name)
        assert response.headers["www-authenticate"].startswith("Bearer"), name


# --- the sweep -----------------------------------------------------------------------------------------

# Strings that cannot pass as a real provider key (short, spaced or huge): the sweep must not call out.
GARBAGE_VALUES: list[Any] = [
    None,
    -1,
    2**64,
    1.5e308,
    True,
    [],
    {"$gt": ""},
    "",
    "' OR 1=1 --",
    "\u2603",
    "\ud800",
    "x" * 100_000,
]
FIELD_GARBAGE: list[Any] = [None, 2**64, [], {"$gt": ""}, "\ud800", "a\u0000b"]
GARBAGE_BODIES = [
    b"",
    b"{",
    b"null",
    b"[]",
    b'"x"',
    b"1e999",
    b"[" * 50_000,
    b'{"a": ' * 5000,
    b"\x00\xff",
    b'{"__proto__": {"x": 1}}',
]
GARBAGE_QUERY = ["-1", "1e309", "%00", "a" * 3000]
SWEEP_IDS = ["not-a-uuid", "%00", "%ff%fe", "a" * 300]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def sweep_requests(route: ApiRoute, *, signed_in: bool) -> list[dict[str, Any]]:
    url = concrete(route.path)
    out: list[dict[str, Any]] = [{"method": route.method, "url": url}]
    if not signed_in and route.auth in {"user", "admin"}:  # refused before anything else is read
        bodies = [{"method": route.method, "url": url, "content": raw} for raw in GARBAGE_BODIES[:3]]
        return (
            out
            + [{"method": route.method, "url": concrete(route.path, "not-a-uuid")}]
            + (bodies if route.method in WRITE_METHODS else [])
        )
    out += [{"method": route.method, "url": concrete(route.path, bad)} for bad in SWEEP_IDS if "{" in route.path]
    if route.method in WRITE_METHODS:
        out += [{"method": route.method, "url": url, "content": raw} for raw in GARBAGE_BODIES]
    names = sorted({q["name"] for q in route.query} | {"limit", "cursor"})
    out += [{"method": route.method, "url": f"{url}?{name}={value}"} for name in names for value in GARBAGE_QUERY]
    if route.method in WRITE_METHODS:
        fields = sorted(((route.body or {}).get("properties") or {}) | {"name": None})
        out += [
            {"method": route.method, "url": url, "content": json.dumps({f: value for f in fields}).encode()}
            for value in GARBAGE_VALUES
        ]
        out += [
            {"method": route.method, "url": url, "content": json.dumps({f: value}).encode()}
            for f in fields
            for value in FIELD_GARBAGE
        ]
    return out


def deliberate(response: httpx.Response) -> bool:
    """A 503 the code chose (a dependency or setting missing: webhooks without their secret), not a crash."""
    try:
        return response.status_code == 503 and response.json().get("code") == "SERVICE_UNAVAILABLE"
    except ValueError:
        return False


async def sweep(client: httpx.AsyncClient, requests: list[dict[str, Any]], headers: dict[str, str]) -> list[str]:
    failures: list[str] = []
    gate = asyncio.Semaphore(16)

    async def one(request: dict[str, Any]) -> None:
        async with gate:
            response = await client.request(**request, headers={**headers, "content-type": "application/json"})
        if response.status_code >= 500 and not deliberate(response):
            failures.append(
                f"{request['method']} {request['url'][:100]} {str(request.get('content', ''))[:80]} -> {response.status_code} {response.text[:200]}"
            )

    await asyncio.gather(*(one(r) for r in requests))
    return failures


@pytest.mark.parametrize("route", api.routes, ids=lambda r: f"{r.method} {r.path}")
async def test_garbage_never_gets_a_5xx(client: httpx.AsyncClient, writer: UserHandle, route: ApiRoute) -> None:
    """Every registered route with garbage ids, query strings and bodies, as nobody and as a signed-in user."""
    user = (
        await register_user(client) if route.path == "/auth/logout" else writer
    )  # logout would end the shared session
    failures = await sweep(client, sweep_requests(route, signed_in=False), {})
    failures += await sweep(client, sweep_requests(route, signed_in=True), user.headers)
    assert not failures, "\n".join(failures)


async def test_every_method_on_every_path_never_gets_a_5xx(client: httpx.AsyncClient, writer: UserHandle) -> None:
    paths = sorted({r.path for r in api.routes if r.path != "/auth/logout"})
    requests = [{"method": m, "url": concrete(path)} for path in paths for m in METHODS]
    assert not await sweep(client, requests, writer.headers)


async def test_the_sweep_covers_every_served_api_route(server: LiveServer) -> None:
    from starlette.routing import Route

    served = {r.path for r in server.app.routes if isinstance(r, Route) and r.path.startswith("/api/")}
    assert served - {"/api/openapi.json", "/api/docs"} == {"/api" + r.path for r in api.routes}
