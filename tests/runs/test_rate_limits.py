"""Per-user rate limits at their defaults (tuned server): 60 requests/min over REST and GraphQL together,
6 run starts/min, at most 4 concurrent streams; 429 with Retry-After and a {"detail"} body (REST) or a GraphQL
response with `extensions.code` (/graphql)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

import httpx

from tests.runs.helpers import LONG_PROMPT, make_thread, start_run, wait_for_status
from tests.runs.procs import Process
from tests.support import UserHandle, register_user

WINDOW = 60


def assert_429(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    assert response.json()["detail"]
    return retry_after


def assert_graphql_429(response: httpx.Response) -> int:
    """/graphql answers over the limit as GraphQL clients read errors: 429, Retry-After, `errors[].extensions.code`."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retry_after": retry_after}, error
    assert "detail" not in response.json() and error["message"]
    return retry_after


async def in_one_window(attempt: Callable[[], Awaitable[None]]) -> None:
    """Limits count in fixed one-minute windows: a burst that straddles a boundary is tried once more."""
    for _ in range(2):
        if time.time() % WINDOW > WINDOW - 5:  # too close to the boundary for a burst: wait it out
            await asyncio.sleep(WINDOW - time.time() % WINDOW + 0.5)
        window = int(time.time()) // WINDOW
        await attempt()
        if int(time.time()) // WINDOW == window:
            return
    raise AssertionError("could not run the burst inside one rate-limit window")


async def test_sixty_requests_per_minute_per_user_over_rest_and_graphql(tuned_client: httpx.AsyncClient) -> None:
    async def attempt() -> None:
        user = await register_user(tuned_client)  # registering is public; its GET /api/auth/me is request 1
        other = await register_user(tuned_client)
        for i in range(2, 61):
            if i % 2:
                response = await tuned_client.get("/api/projects", headers=user.headers)
            else:
                response = await tuned_client.post("/graphql", json={"query": "{ __typename }"}, headers=user.headers)
            assert response.status_code == 200, (i, response.text)
        assert_429(await tuned_client.get("/api/projects", headers=user.headers))
        graphql = await tuned_client.post("/graphql", json={"query": "{ __typename }"}, headers=user.headers)
        assert_graphql_429(graphql)
        assert graphql.headers["content-type"].startswith("application/json")
        accept = {**user.headers, "Accept": "application/graphql-response+json"}
        typed = await tuned_client.post("/graphql", json={"query": "{ __typename }"}, headers=accept)
        assert_graphql_429(typed)
        assert typed.headers["content-type"].startswith("application/graphql-response+json")
        # Per user: somebody else is not throttled, and anonymous routes still answer.
        assert (await tuned_client.get("/api/projects", headers=other.headers)).status_code == 200
        assert (await tuned_client.get("/api/health")).status_code == 200

    await in_one_window(attempt)


async def test_six_run_starts_per_minute(tuned_client: httpx.AsyncClient) -> None:
    async def attempt() -> None:
        user = await register_user(tuned_client)
        threads = [await make_thread(tuned_client, user) for _ in range(7)]
        runs = [await start_run(tuned_client, user, thread_id, prompt=LONG_PROMPT) for thread_id in threads[:6]]
        refused = await tuned_client.post(f"/api/thread/{threads[6]}/agent/start", json={}, headers=user.headers)
        assert_429(refused)
        result = await tuned_client.post(
            "/graphql",
            headers=user.headers,
            json={
                "query": "mutation($t: ID!) { startRun(input: {threadId: $t}) { __typename ... on RateLimitedError { code retryAfter } } }",
                "variables": {"t": threads[6]},
            },
        )
        typed = result.json()["data"]["startRun"]
        assert (
            typed["__typename"] == "RateLimitedError" and typed["code"] == "RATE_LIMITED" and typed["retryAfter"] >= 1
        )
        for run in runs:
            await tuned_client.post(f"/api/agent-run/{run['agent_run_id']}/stop", headers=user.headers)
        for run in runs:
            await wait_for_status(
                tuned_client, user, run["agent_run_id"], {"stopped", "completed"}
            )  # an early one may have finished

    await in_one_window(attempt)


async def test_at_most_four_concurrent_streams_per_user(
    tuned: Process, tuned_client: httpx.AsyncClient, carol: UserHandle
) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    await wait_for_status(tuned_client, carol, run_id, "running")
    await tuned_client.post(f"/api/agent-run/{run_id}/pause", headers=carol.headers)  # keeps the streams open
    url = f"/api/agent-run/{run_id}/stream"
    async with AsyncExitStack() as stack:
        streams: list[httpx.Response] = []
        for _ in range(4):
            response = await stack.enter_async_context(tuned_client.stream("GET", url, headers=carol.headers))
            assert response.status_code == 200
            streams.append(response)
        fifth = await tuned_client.get(url, headers=carol.headers)
        assert_429(fifth)
        # The limit is per user, across transports: a GraphQL subscription is refused too.
        body = {"query": "subscription($id: ID!) { runEvents(runId: $id) { sequence } }", "variables": {"id": run_id}}
        sse = await tuned_client.post("/graphql", json=body, headers={**carol.headers, "Accept": "text/event-stream"})
        assert '"RATE_LIMITED"' in sse.text, sse.text
        # Closing one stream frees its slot.
        await streams.pop().aclose()
        await asyncio.sleep(0.3)
        async with tuned_client.stream("GET", url, headers=carol.headers) as again:
            assert again.status_code == 200
    # All closed: every slot is free again (nothing leaked by the refused attempts).
    await asyncio.sleep(0.3)
    async with AsyncExitStack() as stack:
        for _ in range(4):
            response = await stack.enter_async_context(tuned_client.stream("GET", url, headers=carol.headers))
            assert response.status_code == 200
    stopped = await tuned_client.post(f"/api/agent-run/{run_id}/stop", headers=carol.headers)
    assert stopped.status_code == 200
    await wait_for_status(tuned_client, carol, run_id, "stopped")
