"""Token abilities: a login may narrow what its tokens can do; it can never widen it."""

from __future__ import annotations

import httpx
import pytest

from runplane.auth.abilities import ALL_ABILITIES, USER_ABILITIES
from tests.auth.helpers import (
    CREATE_PROJECT,
    LOGIN,
    PASSWORD,
    PROJECTS,
    REGISTER,
    assert_error,
    bearer,
    claims_of,
    gql_as,
    login,
    make_admin,
    me,
)
from tests.support import LiveServer, UserHandle, gql, register_user

ISSUE_ABILITIES = {
    "projects:read",
    "projects:write",
    "runs:start",
    "runs:control",
    "sandbox:exec",
    "billing:read",
    "billing:write",
    "admin",
}


def test_the_issue_abilities_are_exactly_the_known_ones() -> None:
    assert ALL_ABILITIES == ISSUE_ABILITIES and USER_ABILITIES == ISSUE_ABILITIES - {"admin"}


async def abilities_of(client: httpx.AsyncClient, token: str) -> list[str]:
    response = await me(client, token)
    assert response.status_code == 200, response.text
    abilities: list[str] = response.json()["abilities"]
    return abilities


async def test_default_login_carries_every_user_ability(client: httpx.AsyncClient, alice: UserHandle) -> None:
    assert await abilities_of(client, alice.access_token) == sorted(USER_ABILITIES)
    assert sorted(claims_of(alice.access_token)["abilities"]) == sorted(USER_ABILITIES)


async def test_read_only_token_can_list_but_not_create(client: httpx.AsyncClient, alice: UserHandle) -> None:
    tokens = await login(client, alice.email, abilities=["projects:read"])
    token = tokens["access_token"]
    assert await abilities_of(client, token) == ["projects:read"]
    listed = await client.get("/api/projects", headers=bearer(token))
    assert listed.status_code == 200 and listed.json()["projects"] == []
    body = assert_error(await client.post("/api/projects", json={"name": "nope"}, headers=bearer(token)), 403)
    assert "projects:write" in body["detail"]
    # Nothing was created behind the 403.
    assert (await client.get("/api/projects", headers=alice.headers)).json()["projects"] == []


async def test_read_only_token_on_graphql(client: httpx.AsyncClient, alice: UserHandle) -> None:
    logged_in = await gql(
        client, LOGIN, {"input": {"email": alice.email, "password": PASSWORD, "abilities": ["projects:read"]}}
    )
    token = logged_in["data"]["login"]["accessToken"]
    created = (await gql_as(client, CREATE_PROJECT, token, {"name": "nope"}))["data"]["createProject"]
    assert created["__typename"] == "ForbiddenError" and created["code"] == "FORBIDDEN"
    listed = await gql_as(client, PROJECTS, token)
    assert "errors" not in listed and listed["data"]["projects"]["edges"] == []


async def test_write_without_read_cannot_list(client: httpx.AsyncClient, alice: UserHandle) -> None:
    token = (await login(client, alice.email, abilities=["projects:write"]))["access_token"]
    assert (await client.post("/api/projects", json={"name": "w"}, headers=bearer(token))).status_code == 201
    assert_error(await client.get("/api/projects", headers=bearer(token)), 403)
    result = await gql_as(client, PROJECTS, token)
    assert result["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_empty_abilities_grant_nothing(client: httpx.AsyncClient, alice: UserHandle) -> None:
    token = (await login(client, alice.email, abilities=[]))["access_token"]
    assert await abilities_of(client, token) == []
    assert_error(await client.get("/api/projects", headers=bearer(token)), 403)


async def test_non_admin_asking_for_admin_is_silently_not_granted(client: httpx.AsyncClient, alice: UserHandle) -> None:
    token = (await login(client, alice.email, abilities=["admin", "projects:read"]))["access_token"]
    assert await abilities_of(client, token) == ["projects:read"]
    only_admin = (await login(client, alice.email, abilities=["admin"]))["access_token"]
    assert await abilities_of(client, only_admin) == []
    registered = await register_user(client, abilities=["admin", "billing:read"])
    assert await abilities_of(client, registered.access_token) == ["billing:read"]


async def test_an_admin_may_carry_admin(server: LiveServer, client: httpx.AsyncClient) -> None:
    admin = await register_user(client)
    await make_admin(server.settings, admin)
    assert await abilities_of(client, (await login(client, admin.email))["access_token"]) == sorted(ALL_ABILITIES)
    token = (await login(client, admin.email, abilities=["admin"]))["access_token"]
    assert await abilities_of(client, token) == ["admin"]
    assert (await me(client, token)).json()["is_admin"] is True


@pytest.mark.parametrize(
    "abilities",
    [["projects:read", "root"], ["PROJECTS:READ"], ["*"], "projects:read", [1], {"projects:read": True}, [None]],
)
async def test_unknown_or_malformed_abilities_are_422(
    abilities: object, client: httpx.AsyncClient, alice: UserHandle
) -> None:
    body = {"email": alice.email, "password": alice.password, "abilities": abilities}
    assert_error(await client.post("/api/auth/token", json=body), 422)
    fresh = {"email": f"x{abs(hash(str(abilities)))}@example.com", "password": PASSWORD, "abilities": abilities}
    assert_error(await client.post("/api/auth/register", json=fresh), 422)


async def test_unknown_abilities_on_graphql_are_an_input_error(client: httpx.AsyncClient, alice: UserHandle) -> None:
    result = await gql(client, LOGIN, {"input": {"email": alice.email, "password": PASSWORD, "abilities": ["root"]}})
    payload = result["data"]["login"]
    assert payload["__typename"] == "InputError" and payload["field"] == "abilities"
    registered = await gql(
        client, REGISTER, {"input": {"email": "r@example.com", "password": PASSWORD, "abilities": ["root"]}}
    )
    assert registered["data"]["register"]["__typename"] == "InputError"


async def test_refresh_keeps_the_abilities_of_the_login(client: httpx.AsyncClient, alice: UserHandle) -> None:
    tokens = await login(client, alice.email, abilities=["projects:read", "runs:start"])
    rotated = (await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).json()
    assert await abilities_of(client, rotated["access_token"]) == ["projects:read", "runs:start"]
    sessions = (await client.get("/api/auth/sessions", headers=alice.headers)).json()["sessions"]
    narrowed = [s for s in sessions if s["session_id"] == claims_of(tokens["access_token"])["sid"]]
    assert narrowed[0]["abilities"] == ["projects:read", "runs:start"]
