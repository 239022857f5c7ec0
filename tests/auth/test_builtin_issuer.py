"""The built-in issuer over real HTTP: register, login, refresh rotation, logout, me, sessions; REST and GraphQL."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.auth.helpers import (
    LOGIN,
    LOGOUT,
    ME,
    PASSWORD,
    REFRESH,
    REVOKE_SESSION,
    SESSIONS,
    assert_error,
    assert_gql_unauthenticated,
    assert_rejected_everywhere,
    assert_token_shape,
    assert_unauthorized,
    bearer,
    claims_of,
    gql_as,
    gql_register,
    login,
    me,
    password_hash_of,
)
from tests.support import LiveServer, UserHandle, gql

# ---- REST --------------------------------------------------------------------------------------


async def test_register_answers_a_token_pair_that_works(client: httpx.AsyncClient) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    response = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD, "display_name": "New"}
    )
    assert response.status_code == 201, response.text
    tokens = response.json()
    assert_token_shape(tokens)
    profile = (await me(client, tokens["access_token"])).json()
    assert profile["email"] == email and profile["display_name"] == "New" and profile["is_admin"] is False
    assert "admin" not in profile["abilities"] and "projects:write" in profile["abilities"]
    assert claims_of(tokens["access_token"])["sub"] == profile["id"]


async def test_login_opens_a_new_session(client: httpx.AsyncClient, alice: UserHandle) -> None:
    tokens = await login(client, alice.email)
    assert_token_shape(tokens)
    assert tokens["access_token"] != alice.access_token and tokens["refresh_token"] != alice.refresh_token
    assert (await me(client, tokens["access_token"])).json()["id"] == alice.user_id
    assert claims_of(tokens["access_token"])["sid"] != claims_of(alice.access_token)["sid"]


async def test_login_email_is_case_insensitive(client: httpx.AsyncClient, alice: UserHandle) -> None:
    tokens = await login(client, "  " + alice.email.upper() + " ")
    assert (await me(client, tokens["access_token"])).json()["id"] == alice.user_id


async def test_password_is_stored_as_argon2id(server: LiveServer, alice: UserHandle) -> None:
    stored = await password_hash_of(server.settings, alice.email)
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_refresh_rotates_the_refresh_token(client: httpx.AsyncClient, alice: UserHandle) -> None:
    response = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert response.status_code == 200, response.text
    rotated = response.json()
    assert_token_shape(rotated)
    assert rotated["refresh_token"] != alice.refresh_token
    assert claims_of(rotated["access_token"])["sid"] == claims_of(alice.access_token)["sid"]
    assert (await me(client, rotated["access_token"])).json()["id"] == alice.user_id
    again = await client.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 200 and again.json()["refresh_token"] != rotated["refresh_token"]


async def test_reusing_a_rotated_refresh_token_revokes_the_session(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    rotated = (await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})).json()
    reuse = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert_unauthorized(reuse)
    # The whole family is dead: the legitimate new refresh token and every access token of the session.
    assert_unauthorized(await client.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]}))
    await assert_rejected_everywhere(client, rotated["access_token"])
    await assert_rejected_everywhere(client, alice.access_token)
    # Other sessions of the same user are untouched.
    other = await login(client, alice.email)
    assert (await me(client, other["access_token"])).status_code == 200


async def test_forged_refresh_token_naming_a_session_does_not_revoke_it(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    """Reuse detection must need a token we issued: knowing a session id is not enough to kill it."""
    sid = uuid.UUID(claims_of(alice.access_token)["sid"])
    forged = f"rpr_{sid.hex}.{'A' * 43}"
    assert_unauthorized(await client.post("/api/auth/refresh", json={"refresh_token": forged}))
    assert (await me(client, alice.access_token)).status_code == 200
    response = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert response.status_code == 200, response.text


async def test_refresh_rejects_unknown_and_non_refresh_tokens(client: httpx.AsyncClient, alice: UserHandle) -> None:
    for token in ("rpr_garbage", f"rpr_{uuid.uuid4().hex}.{'x' * 43}", alice.access_token, "", "x" * 5000):
        assert_unauthorized(await client.post("/api/auth/refresh", json={"refresh_token": token}))
    assert (await me(client, alice.access_token)).status_code == 200


async def test_logout_rejects_the_access_and_refresh_tokens(client: httpx.AsyncClient, alice: UserHandle) -> None:
    response = await client.post("/api/auth/logout", headers=alice.headers)
    assert response.status_code == 204, response.text
    await assert_rejected_everywhere(client, alice.access_token)
    assert_unauthorized(await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token}))
    assert_unauthorized(await client.post("/api/auth/logout", headers=alice.headers))


async def test_logout_and_me_need_a_token(client: httpx.AsyncClient) -> None:
    assert_unauthorized(await client.post("/api/auth/logout"))
    assert_unauthorized(await client.get("/api/auth/me"))
    assert_unauthorized(await client.get("/api/auth/sessions"))
    assert_unauthorized(await client.delete(f"/api/auth/sessions/{uuid.uuid4()}"))


async def test_sessions_lists_live_logins_and_marks_the_current_one(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    second = await login(client, alice.email)
    response = await client.get("/api/auth/sessions", headers=bearer(second["access_token"]))
    assert response.status_code == 200, response.text
    sessions = response.json()["sessions"]
    ids = {s["session_id"] for s in sessions}
    assert ids == {claims_of(alice.access_token)["sid"], claims_of(second["access_token"])["sid"]}
    current = [s["session_id"] for s in sessions if s["current"]]
    assert current == [claims_of(second["access_token"])["sid"]]
    assert all(s["expires_at"] and s["created_at"] and isinstance(s["abilities"], list) for s in sessions)
    assert all(s["user_agent"].startswith("python-httpx") and s["ip_address"] == "127.0.0.1" for s in sessions)


async def test_delete_session_revokes_it(client: httpx.AsyncClient, alice: UserHandle) -> None:
    second = await login(client, alice.email)
    sid = claims_of(second["access_token"])["sid"]
    response = await client.delete(f"/api/auth/sessions/{sid}", headers=alice.headers)
    assert response.status_code == 204, response.text
    await assert_rejected_everywhere(client, second["access_token"])
    assert_unauthorized(await client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]}))
    listed = (await client.get("/api/auth/sessions", headers=alice.headers)).json()["sessions"]
    assert [s["session_id"] for s in listed] == [claims_of(alice.access_token)["sid"]]
    assert (await me(client, alice.access_token)).status_code == 200


async def test_delete_own_current_session_logs_out(client: httpx.AsyncClient, alice: UserHandle) -> None:
    sid = claims_of(alice.access_token)["sid"]
    assert (await client.delete(f"/api/auth/sessions/{sid}", headers=alice.headers)).status_code == 204
    await assert_rejected_everywhere(client, alice.access_token)


async def test_another_users_session_is_not_found(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    bob_sid = claims_of(bob.access_token)["sid"]
    for sid in (bob_sid, str(uuid.uuid4()), "not-a-uuid"):
        assert_error(await client.delete(f"/api/auth/sessions/{sid}", headers=alice.headers), 404)
    assert (await me(client, bob.access_token)).status_code == 200


# ---- GraphQL twins -----------------------------------------------------------------------------


async def test_graphql_register_login_me(client: httpx.AsyncClient) -> None:
    email = f"gql-{uuid.uuid4().hex[:8]}@example.com"
    registered = await gql_register(client, email=email, displayName="Gee")
    assert registered["__typename"] == "AuthTokens" and registered["tokenType"] == "bearer"
    assert registered["expiresIn"] > 0 and registered["sessionId"]
    profile = (await gql_as(client, ME, registered["accessToken"]))["data"]["me"]
    assert profile["email"] == email and profile["displayName"] == "Gee" and profile["isAdmin"] is False
    logged_in = (await gql(client, LOGIN, {"input": {"email": email, "password": PASSWORD}}))["data"]["login"]
    assert logged_in["__typename"] == "AuthTokens" and logged_in["sessionId"] != registered["sessionId"]
    # One issuer, two transports: a GraphQL token works on REST.
    rest_profile = (await me(client, logged_in["accessToken"])).json()
    assert rest_profile["email"] == email


async def test_graphql_login_failures_are_unauthenticated(client: httpx.AsyncClient, alice: UserHandle) -> None:
    wrong = await gql(client, LOGIN, {"input": {"email": alice.email, "password": "wrong password"}})
    unknown = await gql(client, LOGIN, {"input": {"email": "nobody@example.com", "password": "wrong password"}})
    assert_gql_unauthenticated(wrong)
    assert_gql_unauthenticated(unknown)
    assert wrong["errors"][0]["message"] == unknown["errors"][0]["message"]


async def test_graphql_refresh_rotation_and_reuse(client: httpx.AsyncClient, alice: UserHandle) -> None:
    rotated = (await gql(client, REFRESH, {"token": alice.refresh_token}))["data"]["refreshTokens"]
    assert rotated["__typename"] == "AuthTokens" and rotated["refreshToken"] != alice.refresh_token
    assert (await gql_as(client, ME, rotated["accessToken"]))["data"]["me"]["email"] == alice.email
    assert_gql_unauthenticated(await gql(client, REFRESH, {"token": alice.refresh_token}))
    assert_gql_unauthenticated(await gql(client, REFRESH, {"token": rotated["refreshToken"]}))
    assert_gql_unauthenticated(await gql_as(client, ME, rotated["accessToken"]))


async def test_graphql_logout(client: httpx.AsyncClient, alice: UserHandle) -> None:
    assert (await gql(client, LOGOUT, user=alice))["data"]["logout"] == {"ok": True}
    await assert_rejected_everywhere(client, alice.access_token)
    again = await gql(client, LOGOUT, user=alice)
    assert_gql_unauthenticated(again)
    assert again["errors"][0]["message"] == "Session has been revoked"  # the real reason, as on REST
    assert_gql_unauthenticated(await gql(client, LOGOUT))


async def test_mutations_over_get_do_not_log_out(client: httpx.AsyncClient, alice: UserHandle) -> None:
    """GET must stay safe: a link or <img> cannot revoke someone's session."""
    response = await client.get("/graphql", params={"query": LOGOUT}, headers=alice.headers)
    assert response.status_code in {400, 405}
    assert (await me(client, alice.access_token)).status_code == 200
    assert (await client.get("/graphql", params={"query": ME}, headers=alice.headers)).json()["data"]["me"][
        "email"
    ] == alice.email


async def test_token_in_the_query_string_is_ignored_outside_streams(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    assert_unauthorized(await client.get("/api/auth/me", params={"token": alice.access_token}))


async def test_concurrent_refreshes_with_one_token_issue_one_pair(client: httpx.AsyncClient, alice: UserHandle) -> None:
    responses = await asyncio.gather(
        *(client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token}) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200, 401, 401, 401, 401]


async def test_graphql_sessions_and_revoke(client: httpx.AsyncClient, alice: UserHandle) -> None:
    second = (await gql(client, LOGIN, {"input": {"email": alice.email, "password": PASSWORD}}))["data"]["login"]
    sessions = (await gql(client, SESSIONS, user=alice))["data"]["sessions"]
    assert {s["id"] for s in sessions} >= {second["sessionId"]} and len(sessions) == 2
    assert [s["current"] for s in sessions if s["id"] == second["sessionId"]] == [False]
    revoked = (await gql(client, REVOKE_SESSION, {"id": second["sessionId"]}, user=alice))["data"]["revokeSession"]
    assert revoked == {"__typename": "RevokeSessionPayload", "revokedId": second["sessionId"]}
    await assert_rejected_everywhere(client, second["accessToken"])
    remaining = (await gql(client, SESSIONS, user=alice))["data"]["sessions"]
    assert len(remaining) == 1 and remaining[0]["current"] is True


async def test_graphql_revoke_another_users_session_is_not_found(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    bob_session = (await gql(client, SESSIONS, user=bob))["data"]["sessions"][0]["id"]
    for session_id in (bob_session, claims_of(bob.access_token)["sid"], "garbage", str(uuid.uuid4())):
        result = (await gql(client, REVOKE_SESSION, {"id": session_id}, user=alice))["data"]["revokeSession"]
        assert result["__typename"] == "NotFoundError" and result["code"] == "NOT_FOUND"
    assert (await me(client, bob.access_token)).status_code == 200


async def test_graphql_me_and_sessions_need_a_token(client: httpx.AsyncClient) -> None:
    assert_gql_unauthenticated(await gql(client, ME))
    assert_gql_unauthenticated(await gql(client, SESSIONS))
    result = await gql(client, REVOKE_SESSION, {"id": str(uuid.uuid4())})
    assert_gql_unauthenticated(result)


async def test_revoked_session_token_is_rejected_on_graphql_too(client: httpx.AsyncClient, alice: UserHandle) -> None:
    assert (await client.post("/api/auth/logout", headers=alice.headers)).status_code == 204
    assert_gql_unauthenticated(await gql(client, SESSIONS, user=alice))
