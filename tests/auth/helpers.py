"""Small helpers shared by the auth tests: assertions on 401s, GraphQL documents, token forging, raw DB reads."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

import httpx
import jwt

from runplane.config import Settings
from tests.support import UserHandle, gql

PASSWORD = "correct horse battery"

# ---- GraphQL documents -------------------------------------------------------------------------

TOKENS_FIELDS = "... on AuthTokens { accessToken refreshToken tokenType expiresIn sessionId }"
ERROR_FIELDS = "... on UserError { __typename code message } ... on InputError { field }"

REGISTER = f"""mutation($input: RegisterInput!) {{ register(input: $input) {{ __typename {TOKENS_FIELDS} {ERROR_FIELDS} }} }}"""
LOGIN = f"""mutation($input: LoginInput!) {{ login(input: $input) {{ __typename {TOKENS_FIELDS} {ERROR_FIELDS} }} }}"""
REFRESH = f"""mutation($token: String!) {{ refreshTokens(refreshToken: $token) {{ __typename {TOKENS_FIELDS} {ERROR_FIELDS} }} }}"""
LOGOUT = "mutation { logout { ok } }"
ME = "query { me { id email displayName isAdmin createdAt } }"
SESSIONS = "query { sessions { id abilities userAgent current expiresAt lastUsedAt } }"
REVOKE_SESSION = """mutation($id: ID!) {
  revokeSession(id: $id) { __typename ... on RevokeSessionPayload { revokedId } ... on UserError { code message } }
}"""
CREATE_PROJECT = """mutation($name: String!) {
  createProject(input: {name: $name}) { __typename ... on ProjectPayload { project { id name } } ... on UserError { code message } }
}"""
PROJECTS = "query { projects { edges { node { id name } } } }"


# ---- HTTP helpers ------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    value = f"Bearer {token}"
    # Raw UTF-8 for tokens that are not ASCII: what a misbehaving client would put on the wire.
    return {"Authorization": value if value.isascii() else value.encode()}  # type: ignore[dict-item]


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/auth/token", json={"email": email, "password": password, **extra})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/auth/me", headers=bearer(token))


async def gql_as(
    client: httpx.AsyncClient, query: str, token: str | None, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """GraphQL with a raw bearer token (tests.support.gql takes a UserHandle)."""
    headers = bearer(token) if token is not None else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def assert_token_shape(tokens: dict[str, Any]) -> None:
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert tokens["token_type"] == "bearer"
    assert isinstance(tokens["expires_in"], int) and tokens["expires_in"] > 0
    assert tokens["access_token"].count(".") == 2 and tokens["refresh_token"]


def assert_unauthorized(response: httpx.Response) -> None:
    """A REST 401 as clients expect it: {"detail"} and a Bearer challenge."""
    assert response.status_code == 401, response.text
    assert isinstance(response.json()["detail"], str) and response.json()["detail"]
    assert response.headers["www-authenticate"].lower().startswith("bearer")


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def assert_gql_unauthenticated(result: dict[str, Any]) -> None:
    assert result.get("data") is None, result
    assert [error["extensions"]["code"] for error in result["errors"]] == ["UNAUTHENTICATED"], result


async def assert_rejected_everywhere(client: httpx.AsyncClient, token: str) -> None:
    """The token is refused by REST (401 + WWW-Authenticate) and by GraphQL (UNAUTHENTICATED)."""
    assert_unauthorized(await me(client, token))
    assert_gql_unauthenticated(await gql_as(client, ME, token))


async def gql_register(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    fields.setdefault("email", f"gql-{uuid.uuid4().hex[:10]}@example.com")
    fields.setdefault("password", PASSWORD)
    result = await gql(client, REGISTER, {"input": fields})
    payload: dict[str, Any] = result["data"]["register"]
    return payload


# ---- tokens ------------------------------------------------------------------------------------


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def builtin_token(
    settings: Settings, base: str, *, secret: str | None = None, drop: tuple[str, ...] = (), **changes: Any
) -> str:
    """Re-sign a real access token's claims with some of them changed: one defect at a time."""
    claims = {**claims_of(base), **changes}
    for name in drop:
        claims.pop(name, None)
    return jwt.encode(claims, secret or settings.jwt_secret, algorithm="HS256")


# ---- direct database reads (the driver, not our ORM setup) --------------------------------------


async def fetch_one(settings: Settings, sql_sqlite: str, sql_postgres: str, *args: Any) -> Any:
    if settings.is_sqlite:
        path = settings.database_url.removeprefix("sqlite://")
        with sqlite3.connect(path) as conn:
            row = conn.execute(sql_sqlite, args).fetchone()
        return row[0] if row else None
    import asyncpg

    from runplane.db import postgres_dsn

    conn = await asyncpg.connect(postgres_dsn(settings.database_url))
    try:
        return await conn.fetchval(sql_postgres, *args)
    finally:
        await conn.close()


async def password_hash_of(settings: Settings, email: str) -> str:
    value = await fetch_one(
        settings,
        "SELECT password_hash FROM users WHERE email = ?",
        "SELECT password_hash FROM users WHERE email = $1",
        email,
    )
    assert isinstance(value, str)
    return value


async def make_admin(settings: Settings, user: UserHandle) -> None:
    """Admins are made by operators (`runplane create-user --admin`); flip the flag the same way, in the DB."""
    if settings.is_sqlite:
        with sqlite3.connect(settings.database_url.removeprefix("sqlite://")) as conn:
            conn.execute("UPDATE users SET is_admin = 1 WHERE email = ?", (user.email,))
        return
    import asyncpg

    from runplane.db import postgres_dsn

    conn = await asyncpg.connect(postgres_dsn(settings.database_url))
    try:
        await conn.execute("UPDATE users SET is_admin = true WHERE email = $1", user.email)
    finally:
        await conn.close()
