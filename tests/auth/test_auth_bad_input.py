"""Bad input on the public auth routes: the right 4xx with {"detail"}, never a 500."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.auth.helpers import (
    LOGIN,
    PASSWORD,
    REGISTER,
    assert_error,
    assert_gql_unauthenticated,
    assert_unauthorized,
    login,
)
from tests.support import LiveServer, UserHandle, gql

PUBLIC_ROUTES = ["/api/auth/register", "/api/auth/token", "/api/auth/refresh"]


def fresh_email() -> str:
    return f"bad-{uuid.uuid4().hex[:10]}@example.com"


async def post_raw(client: httpx.AsyncClient, path: str, content: bytes) -> httpx.Response:
    return await client.post(path, content=content, headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
@pytest.mark.parametrize("raw", [b"{", b"{'email': 1}", b"nope", b'{"email": "a"', b"\xff\xfe{}", b"{}{}", b"   "])
async def test_malformed_json_is_400(path: str, raw: bytes, client: httpx.AsyncClient) -> None:
    assert_error(await post_raw(client, path, raw), 400)


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
@pytest.mark.parametrize("raw", [b"[]", b'["a@b.co", "pw"]', b'"text"', b"42", b"null", b"true"])
async def test_non_object_json_is_422(path: str, raw: bytes, client: httpx.AsyncClient) -> None:
    assert_error(await post_raw(client, path, raw), 422)


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
async def test_deeply_nested_json_is_a_client_error(path: str, client: httpx.AsyncClient) -> None:
    """A 100k-deep array is small (200 KB) but blows Python's recursion limit in json.loads."""
    response = await post_raw(client, path, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code in {400, 422}, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "a@example.com"},
        {"password": PASSWORD},
        {"email": None, "password": PASSWORD},
        {"email": 42, "password": PASSWORD},
        {"email": ["a@example.com"], "password": PASSWORD},
        {"email": "a@example.com", "password": 12345678},
        {"email": "a@example.com", "password": None},
        {"email": "a@example.com", "password": {"x": 1}},
    ],
)
@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/token"])
async def test_missing_or_mistyped_credentials_are_422(
    path: str, body: dict[str, object], client: httpx.AsyncClient
) -> None:
    assert_error(await client.post(path, json=body), 422)


@pytest.mark.parametrize("body", [{}, {"refresh_token": None}, {"refresh_token": 1}, {"refresh_token": ["rpr_x"]}])
async def test_refresh_with_missing_or_mistyped_token_is_422(
    body: dict[str, object], client: httpx.AsyncClient
) -> None:
    assert_error(await client.post("/api/auth/refresh", json=body), 422)


@pytest.mark.parametrize("password", ["", "short", "1234567", "x" * 1025])
async def test_register_password_length_is_checked(password: str, client: httpx.AsyncClient) -> None:
    body = assert_error(
        await client.post("/api/auth/register", json={"email": fresh_email(), "password": password}), 422
    )
    assert body.get("field") == "password"


@pytest.mark.parametrize(
    "email",
    [
        "",
        "   ",
        "plainaddress",
        "a@b",
        "@example.com",
        "a b@example.com",
        "a@exa mple.com",
        "x" * 400 + "@example.com",
        "a\x00@example.com",
    ],
)
async def test_register_rejects_invalid_emails(email: str, client: httpx.AsyncClient) -> None:
    body = assert_error(await client.post("/api/auth/register", json={"email": email, "password": PASSWORD}), 422)
    assert body.get("field") == "email"


@pytest.mark.parametrize("display_name", [42, ["x"], "x" * 201, "nul\x00byte"])
async def test_register_rejects_bad_display_names(display_name: object, client: httpx.AsyncClient) -> None:
    body = {"email": fresh_email(), "password": PASSWORD, "display_name": display_name}
    assert_error(await client.post("/api/auth/register", json=body), 422)


async def test_duplicate_email_is_409(client: httpx.AsyncClient, alice: UserHandle) -> None:
    for email in (alice.email, alice.email.upper(), f"  {alice.email}  "):
        body = assert_error(await client.post("/api/auth/register", json={"email": email, "password": PASSWORD}), 409)
        assert body["code"] == "CONFLICT"


async def test_wrong_password_and_unknown_email_look_the_same(client: httpx.AsyncClient, alice: UserHandle) -> None:
    wrong = await client.post("/api/auth/token", json={"email": alice.email, "password": "not the password"})
    unknown = await client.post("/api/auth/token", json={"email": fresh_email(), "password": "not the password"})
    assert_unauthorized(wrong)
    assert_unauthorized(unknown)
    assert wrong.json() == unknown.json()


@pytest.mark.parametrize(
    "email",
    ["", "no-at-sign", "a\x00b@example.com", "\x00", "x" * 100_000, "é@ü.example", "' OR 1=1 --", "a@example.com\n"],
)
async def test_odd_login_emails_are_401_not_500(email: str, client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.post("/api/auth/token", json={"email": email, "password": PASSWORD}))


@pytest.mark.parametrize("password", ["", "\x00", "pässwörd-ünïcode", "x" * 1024])
async def test_odd_login_passwords_are_401(password: str, client: httpx.AsyncClient, alice: UserHandle) -> None:
    assert_unauthorized(await client.post("/api/auth/token", json={"email": alice.email, "password": password}))


async def test_overlong_login_password_is_422(client: httpx.AsyncClient, alice: UserHandle) -> None:
    assert_error(await client.post("/api/auth/token", json={"email": alice.email, "password": "x" * 1025}), 422)


async def test_unicode_and_nul_passwords_round_trip(client: httpx.AsyncClient) -> None:
    for password in ("pässwörd-ünïcode-✓", "nul\x00inside-password"):
        email = fresh_email()
        registered = await client.post("/api/auth/register", json={"email": email, "password": password})
        assert registered.status_code == 201, registered.text
        await login(client, email, password)
        assert_unauthorized(await client.post("/api/auth/token", json={"email": email, "password": password[:-1]}))


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
async def test_oversized_body_is_413(path: str, server: LiveServer, client: httpx.AsyncClient) -> None:
    limit = server.settings.max_body_bytes
    padding = "x" * (limit + 1)
    response = await post_raw(client, path, f'{{"email": "a@example.com", "password": "{padding}"}}'.encode())
    assert_error(response, 413)


@pytest.mark.parametrize("path", PUBLIC_ROUTES)
async def test_oversized_chunked_body_is_413(path: str, server: LiveServer, client: httpx.AsyncClient) -> None:
    """No Content-Length: the cap must hold while the body streams in."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"email": "a@example.com", "password": "'
        for _ in range(server.settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = await client.post(path, content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_error(response, 413)


async def test_a_body_just_under_the_limit_is_parsed(server: LiveServer, client: httpx.AsyncClient) -> None:
    filler = "x" * (server.settings.max_body_bytes - 200)
    response = await client.post(
        "/api/auth/token", json={"email": fresh_email(), "password": "p" * 20, "filler": filler}
    )
    assert_unauthorized(response)


async def test_wrong_content_type_is_still_parsed_as_json(client: httpx.AsyncClient, alice: UserHandle) -> None:
    body = f'{{"email": "{alice.email}", "password": "{alice.password}"}}'.encode()
    response = await client.post("/api/auth/token", content=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.text


# ---- GraphQL twins -----------------------------------------------------------------------------


async def test_graphql_register_input_errors(client: httpx.AsyncClient, alice: UserHandle) -> None:
    short = (await gql(client, REGISTER, {"input": {"email": fresh_email(), "password": "short"}}))["data"]["register"]
    assert short["__typename"] == "InputError" and short["field"] == "password" and short["code"] == "INVALID_INPUT"
    bad_email = (await gql(client, REGISTER, {"input": {"email": "nope", "password": PASSWORD}}))["data"]["register"]
    assert bad_email["__typename"] == "InputError" and bad_email["field"] == "email"
    duplicate = (await gql(client, REGISTER, {"input": {"email": alice.email, "password": PASSWORD}}))["data"][
        "register"
    ]
    assert duplicate["__typename"] == "ConflictError" and duplicate["code"] == "CONFLICT"


async def test_graphql_register_with_wrong_variable_types(client: httpx.AsyncClient) -> None:
    result = await client.post(
        "/graphql", json={"query": REGISTER, "variables": {"input": {"email": 1, "password": []}}}
    )
    assert result.status_code in {200, 400}
    errors = result.json()["errors"]
    codes = [e["extensions"]["code"] for e in errors]
    assert codes and "INTERNAL_SERVER_ERROR" not in codes
    assert result.json()["data"] is None


async def test_graphql_login_with_odd_email_is_unauthenticated(client: httpx.AsyncClient) -> None:
    for email in ("a\x00b@example.com", "x" * 10_000):
        assert_gql_unauthenticated(await gql(client, LOGIN, {"input": {"email": email, "password": PASSWORD}}))
