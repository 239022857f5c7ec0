"""Failed logins are throttled per account and per client address (429 with Retry-After), over real HTTP.

Every test client connects from 127.0.0.1; uvicorn trusts X-Forwarded-For from there, so each test
speaks from addresses of its own and does not use up the budget of the rest of the suite."""

from __future__ import annotations

import uuid

import httpx

from tests.support import LiveServer, gql, register_user

PASSWORD = "correct horse battery"


def from_address(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


def unique_ip() -> str:
    value = uuid.uuid4().int
    return f"10.{value % 250}.{value // 250 % 250}.{value // 62500 % 250 + 1}"


async def login(client: httpx.AsyncClient, email: str, password: str, ip: str) -> httpx.Response:
    return await client.post("/api/auth/token", json={"email": email, "password": password}, headers=from_address(ip))


async def fail_until_limit(client: httpx.AsyncClient, limit: int, ip: str, email_for: object) -> None:
    for attempt in range(limit):
        answer = await login(client, email_for(attempt), "not the password", ip)  # type: ignore[operator]
        assert answer.status_code == 401, answer.text


def assert_throttled(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(answer.headers["retry-after"]) <= 60


async def test_guessing_one_account_locks_it_for_the_minute_from_anywhere(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    victim = await register_user(client, password=PASSWORD)
    limit = server.settings.login_failures_per_minute
    await fail_until_limit(client, limit, unique_ip(), lambda _: victim.email)
    # Even the right password, from another address, waits: the account's budget is spent.
    assert_throttled(await login(client, victim.email, PASSWORD, unique_ip()))


async def test_spraying_accounts_from_one_address_locks_that_address_only(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    user = await register_user(client, password=PASSWORD)
    limit = server.settings.login_failures_per_minute
    sprayer = unique_ip()
    await fail_until_limit(client, limit, sprayer, lambda i: f"nobody-{uuid.uuid4().hex}-{i}@example.com")
    assert_throttled(await login(client, user.email, PASSWORD, sprayer))
    assert (await login(client, user.email, PASSWORD, unique_ip())).status_code == 200


async def test_successful_logins_cost_nothing(server: LiveServer, client: httpx.AsyncClient) -> None:
    user = await register_user(client, password=PASSWORD)
    ip = unique_ip()
    for _ in range(server.settings.login_failures_per_minute + 5):
        assert (await login(client, user.email, PASSWORD, ip)).status_code == 200


async def test_graphql_login_is_throttled_with_the_same_budget(server: LiveServer, client: httpx.AsyncClient) -> None:
    victim = await register_user(client, password=PASSWORD)
    await fail_until_limit(client, server.settings.login_failures_per_minute, unique_ip(), lambda _: victim.email)
    login_mutation = "mutation($input: LoginInput!) { login(input: $input) { __typename ... on RateLimitedError { code retryAfter } } }"
    result = await gql(client, login_mutation, {"input": {"email": victim.email, "password": PASSWORD}})
    throttled = result["data"]["login"]
    assert throttled["__typename"] == "RateLimitedError" and throttled["code"] == "RATE_LIMITED", result
    assert 1 <= throttled["retryAfter"] <= 60
