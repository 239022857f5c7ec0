"""Login throttling over real HTTP: each attempt takes its hits before the password is verified (atomically),
per account and address, per address, and per account from addresses the account never had a session from;
a success costs nothing. A stranger cannot lock the owner out of the owner's own addresses.

The concurrency test runs on the session server (the default limit of 10, argon2 verifications counted in
its process); the others on a `runplane serve` with small limits, since every attempt costs an argon2 hash.
Test clients connect from 127.0.0.1; uvicorn trusts X-Forwarded-For from there, so each test speaks from
addresses of its own."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from runplane.auth import passwords
from tests.spawned import spawn_server
from tests.support import LiveServer, gql, register_user

PASSWORD = "correct horse battery"
LIMITS = {"login_failures_per_minute": 3, "login_address_failures_per_minute": 5, "login_account_failures": 4}


@pytest.fixture(scope="module")
async def throttled(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with spawn_server(tmp_path_factory.mktemp("throttled"), LIMITS, name="throttled") as proc:
        async with httpx.AsyncClient(base_url=proc.base_url, timeout=30) as http:
            yield http


def from_address(ip: str) -> dict[str, str]:
    return {"X-Forwarded-For": ip}


def unique_ip() -> str:
    value = uuid.uuid4().int
    return f"10.{value % 250}.{value // 250 % 250}.{value // 62500 % 250 + 1}"


async def login(client: httpx.AsyncClient, email: str, password: str, ip: str) -> httpx.Response:
    return await client.post("/api/auth/token", json={"email": email, "password": password}, headers=from_address(ip))


async def register_from(client: httpx.AsyncClient, ip: str) -> str:
    email = f"owner-{uuid.uuid4().hex[:10]}@example.com"
    answer = await client.post(
        "/api/auth/register", json={"email": email, "password": PASSWORD}, headers=from_address(ip)
    )
    assert answer.status_code == 201, answer.text
    return email


async def fail(client: httpx.AsyncClient, times: int, ip: Callable[[int], str], email: Callable[[int], str]) -> None:
    for attempt in range(times):
        answer = await login(client, email(attempt), "not the password", ip(attempt))
        assert answer.status_code == 401, answer.text


def assert_throttled(answer: httpx.Response, window: int = 60) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(answer.headers["retry-after"]) <= window


async def test_concurrent_guesses_verify_no_more_passwords_than_the_limit(
    server: LiveServer, client: httpx.AsyncClient
) -> None:
    """The hit is taken before argon2 runs: twice the limit of concurrent wrong passwords, at most the limit of
    them verified (before, every one of them passed the check before the first strike landed)."""
    victim = await register_user(client, password=PASSWORD)
    limit, ip = server.settings.login_failures_per_minute, unique_ip()
    verified_before = passwords.stats["verified"]
    answers = await asyncio.gather(*(login(client, victim.email, f"guess {i}", ip) for i in range(2 * limit)))
    assert Counter(a.status_code for a in answers) == {401: limit, 429: limit}
    assert passwords.stats["verified"] - verified_before == limit


async def test_guessing_one_account_from_one_address_stops_that_address_only(throttled: httpx.AsyncClient) -> None:
    victim = await register_user(throttled, password=PASSWORD)
    guesser = unique_ip()
    await fail(throttled, LIMITS["login_failures_per_minute"], lambda _: guesser, lambda _: victim.email)
    assert_throttled(await login(throttled, victim.email, PASSWORD, guesser))  # the right password waits too
    assert (await login(throttled, victim.email, PASSWORD, unique_ip())).status_code == 200  # the owner gets in


async def test_guessing_from_many_addresses_cannot_lock_the_owner_out_of_a_known_address(
    throttled: httpx.AsyncClient,
) -> None:
    home = unique_ip()
    owner = await register_from(throttled, home)  # a session from `home`: a known address of the account
    limit = LIMITS["login_account_failures"]
    await fail(throttled, limit, lambda _: unique_ip(), lambda _: owner)  # one guess from each of `limit` addresses
    quarter_hour = 15 * 60
    assert_throttled(await login(throttled, owner, "another guess", unique_ip()), quarter_hour)  # strangers wait
    assert_throttled(await login(throttled, owner, PASSWORD, unique_ip()), quarter_hour)  # so does the owner elsewhere
    assert (await login(throttled, owner, PASSWORD, home)).status_code == 200  # but not at home
    # The success cleared the account's window: new addresses may try again.
    assert (await login(throttled, owner, PASSWORD, unique_ip())).status_code == 200


async def test_spraying_accounts_from_one_address_locks_that_address_only(throttled: httpx.AsyncClient) -> None:
    user = await register_user(throttled, password=PASSWORD)
    sprayer = unique_ip()
    limit = LIMITS["login_address_failures_per_minute"]
    await fail(throttled, limit, lambda _: sprayer, lambda i: f"nobody-{uuid.uuid4().hex}-{i}@example.com")
    assert_throttled(await login(throttled, user.email, PASSWORD, sprayer))
    assert (await login(throttled, user.email, PASSWORD, unique_ip())).status_code == 200


async def test_successful_logins_cost_nothing(throttled: httpx.AsyncClient) -> None:
    user = await register_user(throttled, password=PASSWORD)
    ip = unique_ip()
    for _ in range(LIMITS["login_address_failures_per_minute"] + 2):
        assert (await login(throttled, user.email, PASSWORD, ip)).status_code == 200
    await fail(throttled, LIMITS["login_failures_per_minute"], lambda _: ip, lambda _: user.email)


async def test_a_success_clears_the_failures_of_its_account_and_address(throttled: httpx.AsyncClient) -> None:
    user = await register_user(throttled, password=PASSWORD)
    ip, limit = unique_ip(), LIMITS["login_failures_per_minute"]
    await fail(throttled, limit - 1, lambda _: ip, lambda _: user.email)
    assert (await login(throttled, user.email, PASSWORD, ip)).status_code == 200
    await fail(throttled, limit - 1, lambda _: ip, lambda _: user.email)  # a fresh window: not throttled


async def test_graphql_login_is_throttled_with_the_same_budget(throttled: httpx.AsyncClient) -> None:
    """GraphQL's login comes from 127.0.0.1 (no forwarded address here): it shares the REST login's windows."""
    victim = await register_user(throttled, password=PASSWORD)
    await fail(throttled, LIMITS["login_failures_per_minute"], lambda _: "127.0.0.1", lambda _: victim.email)
    login_mutation = "mutation($input: LoginInput!) { login(input: $input) { __typename ... on RateLimitedError { code retryAfter } } }"
    result = await gql(throttled, login_mutation, {"input": {"email": victim.email, "password": PASSWORD}})
    throttled_result = result["data"]["login"]
    assert throttled_result["__typename"] == "RateLimitedError" and throttled_result["code"] == "RATE_LIMITED"
    assert 1 <= throttled_result["retryAfter"] <= 60
