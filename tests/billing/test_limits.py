"""Plan limits and the token quota under concurrency, over real HTTP.

On the session server (its default plan has no caps: users move themselves to `free`, max_projects=3) and on
the billing server of tests/billing/conftest.py (free plan: 5 tokens). Both run on SQLite or PostgreSQL
(RUNPLANE_TEST_DATABASE): the count-and-insert holds the lock of the user's subscription row on either.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from runplane.models import AgentRun, BillingSubscription, Thread
from runplane.schema.ids import from_global_id
from tests.billing.conftest import FREE_TOKENS, status_of, wait_finished
from tests.support import LiveServer, UserHandle, gql, register_user

FREE_PROJECTS = 3  # the built-in free plan
CREATE = """mutation($i: CreateProjectInput!) { createProject(input: $i) { __typename
  ... on ProjectPayload { project { id } } ... on QuotaExceededError { code message plan limit used allowed } } }"""
START = """mutation($t: ID!) { startRun(input: {threadId: $t, prompt: "go"}) { __typename
  ... on AgentRunPayload { agentRun { id } } ... on QuotaExceededError { code plan limit used allowed periodEnd } } }"""


async def free_user(client: httpx.AsyncClient) -> UserHandle:
    user = await register_user(client)
    moved = await client.post("/api/billing/upgrade-plan", json={"plan": "free"}, headers=user.headers)
    assert moved.status_code == 200 and moved.json()["status"] == "updated", moved.text
    return user


async def create_project(client: httpx.AsyncClient, user: UserHandle, name: str = "p") -> httpx.Response:
    return await client.post("/api/projects", json={"name": name}, headers=user.headers)


async def project_count(client: httpx.AsyncClient, user: UserHandle) -> int:
    return len((await client.get("/api/projects?limit=100", headers=user.headers)).json()["projects"])


def assert_limit_402(response: httpx.Response, limit: str, used: int, allowed: int) -> None:
    assert response.status_code == 402, response.text
    body = response.json()
    assert body["code"] == "QUOTA_EXCEEDED" and isinstance(body["detail"], str) and "upgrade" in body["detail"]
    assert (body["limit"], body["used"], body["allowed"], body["plan"]) == (limit, used, allowed, "free"), body


# ---- projects ------------------------------------------------------------------------------------


async def test_free_plan_caps_projects_in_rest_and_graphql(client: httpx.AsyncClient) -> None:
    user = await free_user(client)
    for i in range(FREE_PROJECTS):
        assert (await create_project(client, user, f"p{i}")).status_code == 201
    assert_limit_402(await create_project(client, user), "projects", FREE_PROJECTS, FREE_PROJECTS)
    refused = (await gql(client, CREATE, {"i": {"name": "one more"}}, user=user))["data"]["createProject"]
    assert refused["__typename"] == "QuotaExceededError" and refused["code"] == "QUOTA_EXCEEDED"
    assert (refused["plan"], refused["limit"], refused["used"], refused["allowed"]) == ("free", "projects", 3, 3)
    initiated = await client.post("/api/agent/initiate", json={"prompt": "build it"}, headers=user.headers)
    assert_limit_402(initiated, "projects", FREE_PROJECTS, FREE_PROJECTS)
    assert await project_count(client, user) == FREE_PROJECTS
    assert (await status_of(client, user))["projects_used"] == FREE_PROJECTS
    # Cheatcode's dialect: the original backend's 402 carries an object in `detail`, which its billing dialog reads.
    original = await client.post("/api/projects?dialect=cheatcode", json={"name": "p"}, headers=user.headers)
    assert original.status_code == 402 and original.json()["code"] == "QUOTA_EXCEEDED"
    detail = original.json()["detail"]
    assert detail["error"] == "projects_limit_reached" and "upgrade" in detail["message"], detail
    assert (detail["limit"], detail["used"], detail["allowed"]) == ("projects", FREE_PROJECTS, FREE_PROJECTS)

    first = (await client.get("/api/projects", headers=user.headers)).json()["projects"][0]["project_id"]
    deleted = await gql(client, "mutation($p: ID!) { deleteProject(id: $p) { __typename } }", {"p": first}, user=user)
    assert deleted["data"]["deleteProject"]["__typename"] == "DeleteProjectPayload"
    created = (await gql(client, CREATE, {"i": {"name": "again"}}, user=user))["data"]["createProject"]
    assert created["__typename"] == "ProjectPayload"


async def test_concurrent_creates_at_the_cap_one_wins(client: httpx.AsyncClient) -> None:
    """At used = max - 1, concurrent creates (REST and GraphQL, separate connections) create exactly one."""
    user = await free_user(client)
    for i in range(FREE_PROJECTS - 1):
        assert (await create_project(client, user, f"p{i}")).status_code == 201
    limits = httpx.Limits(max_connections=20, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30, limits=limits) as http:
        rest = [create_project(http, user, f"rest{i}") for i in range(6)]
        graphql = [gql(http, CREATE, {"i": {"name": f"gql{i}"}}, user=user) for i in range(6)]
        results: list[Any] = await asyncio.gather(*rest, *graphql)
    rest_codes = sorted(r.status_code for r in results[:6])
    gql_types = sorted(r["data"]["createProject"]["__typename"] for r in results[6:])
    created = rest_codes.count(201) + gql_types.count("ProjectPayload")
    assert created == 1, (rest_codes, gql_types)
    assert set(rest_codes) <= {201, 402} and set(gql_types) <= {"ProjectPayload", "QuotaExceededError"}
    assert await project_count(client, user) == FREE_PROJECTS


async def test_limits_are_per_user_and_other_plans_are_not_capped(client: httpx.AsyncClient) -> None:
    capped, roomy = await free_user(client), await register_user(client)
    for i in range(FREE_PROJECTS):
        assert (await create_project(client, capped, f"c{i}")).status_code == 201
    results = await asyncio.gather(*(create_project(client, roomy, f"r{i}") for i in range(FREE_PROJECTS + 2)))
    assert [r.status_code for r in results] == [201] * (FREE_PROJECTS + 2)
    assert (await create_project(client, capped)).status_code == 402


# ---- token reservations (session server: no BYOK key, scripted model) ---------------------------


async def threads_in_new_project(client: httpx.AsyncClient, user: UserHandle, count: int) -> list[str]:
    project = (await create_project(client, user)).json()["project_id"]
    threads = [
        await client.post("/api/threads", json={"project_id": project}, headers=user.headers) for _ in range(count)
    ]
    return [str(t.json()["thread_id"]) for t in threads]


async def start(client: httpx.AsyncClient, user: UserHandle, thread_id: str) -> httpx.Response:
    return await client.post(f"/api/thread/{thread_id}/agent/start", json={"prompt": "go"}, headers=user.headers)


async def test_runs_in_flight_hold_reservations(client: httpx.AsyncClient, server: LiveServer) -> None:
    """Two runs in flight hold 2 reservations; 3 tokens are left beyond them: of concurrent starts exactly one
    goes (and its usage then leaves nothing), the others get 402 though the allowance is not spent."""
    user = await register_user(client)
    user_id = uuid.UUID(user.user_id)
    reservation = server.settings.billing_run_reservation
    allowance = (await status_of(client, user))["tokens_limit"]
    threads = await threads_in_new_project(client, user, 5)
    parked = await Thread.get(id=threads[0])
    for _ in range(2):  # in flight, never dispatched: paused without a lease (the reaper leaves them)
        await AgentRun.create(
            owner_id=user_id, project_id=parked.project_id, thread=parked, model="scripted/demo", status="paused"
        )  # type: ignore[attr-defined]
    used = allowance - 2 * reservation - 3
    await BillingSubscription.filter(user_id=user_id).update(tokens_used=used)

    limits = httpx.Limits(max_connections=10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30, limits=limits) as http:
        responses = await asyncio.gather(*(start(http, user, t) for t in threads[1:]))
    winners = [r for r in responses if r.status_code == 200]
    assert len(winners) == 1 and sorted(r.status_code for r in responses) == [200, 402, 402, 402], [
        r.text for r in responses
    ]
    refused = next(r.json() for r in responses if r.status_code == 402)
    assert refused["code"] == "QUOTA_EXCEEDED" and refused["limit"] == "tokens" and "reserved" in refused["detail"]
    assert (
        refused["tokens_used"] == used
        and refused["allowed"] == allowance
        and refused["tokens_reserved"] >= 2 * reservation
    )
    run = await wait_finished(client, user, winners[0].json()["agent_run_id"])
    spent = run["usage"]["total_tokens"]
    assert run["status"] == "completed" and spent > 3
    assert (await status_of(client, user))["tokens_used"] == used + spent

    again = (await gql(client, START, {"t": threads[2]}, user=user))["data"]["startRun"]
    assert again["__typename"] == "QuotaExceededError" and again["limit"] == "tokens" and again["periodEnd"]
    await AgentRun.filter(owner_id=user_id, status="paused").update(status="completed")  # reservations released
    assert (await start(client, user, threads[2])).status_code == 200


# ---- token quota on the billing server (free plan: 5 tokens, less than one reservation) --------


async def test_concurrent_starts_below_one_reservation_start_one_run(bclient: httpx.AsyncClient) -> None:
    user = await register_user(bclient)
    threads = await threads_in_new_project(bclient, user, 6)
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=str(bclient.base_url), timeout=30, limits=limits) as http:
        responses = await asyncio.gather(
            *(start(http, user, t) for t in threads[:3]), *(gql(http, START, {"t": t}, user=user) for t in threads[3:])
        )
    started = [r for r in responses[:3] if r.status_code == 200]
    started_gql = [r for r in responses[3:] if r["data"]["startRun"]["__typename"] == "AgentRunPayload"]
    assert len(started) + len(started_gql) == 1, responses
    assert all(r.status_code in (200, 402) for r in responses[:3])
    for refused in (r["data"]["startRun"] for r in responses[3:] if r not in started_gql):
        assert (
            refused["__typename"] == "QuotaExceededError"
            and refused["allowed"] == FREE_TOKENS
            and refused["plan"] == "free"
        )
    run_id = (
        started[0].json()["agent_run_id"]
        if started
        else str(from_global_id(started_gql[0]["data"]["startRun"]["agentRun"]["id"], "AgentRun"))
    )
    run = await wait_finished(bclient, user, run_id)
    status = await status_of(bclient, user)
    assert status["tokens_used"] == run["usage"]["total_tokens"] > FREE_TOKENS  # one run's usage, once
    history = (await bclient.get("/api/billing/usage-history", headers=user.headers)).json()
    assert history["totals"]["runs"] == 1
