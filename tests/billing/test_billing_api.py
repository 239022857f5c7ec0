"""Billing on the standard test server: built-in plans, status, usage history validation, the ledger's
once-per-run guarantee, admin routes, and isolation between users."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from runplane.agents import lifecycle
from runplane.agents.providers.base import Usage
from runplane.billing.ledger import record_run_usage
from runplane.models import AgentRun, BillingSubscription, UsageEntry
from tests.conftest import ADMIN_API_KEY
from tests.support import ROOMY_PLAN, LiveServer, UserHandle, register_user

ADMIN = {"X-API-Key": ADMIN_API_KEY}


async def test_plans_are_the_built_in_table(client: httpx.AsyncClient, alice: UserHandle) -> None:
    body = (await client.get("/api/billing/plans", headers=alice.headers)).json()
    assert [p["id"] for p in body["plans"]] == ["free", "pro", "premium", "byok"] and body["current_plan"] == ROOMY_PLAN
    free = body["plans"][0]
    assert free["price_cents"] == 0 and free["token_allowance"] == 200_000 and free["purchasable"] is False
    assert next(p for p in body["plans"] if p["id"] == "byok")["byok"] is True


async def test_status_and_subscription_defaults(client: httpx.AsyncClient, alice: UserHandle) -> None:
    """New users start on the server's default plan (RUNPLANE_BILLING_DEFAULT_PLAN: ROOMY_PLAN on this server)."""
    await client.post("/api/projects", json={"name": "one"}, headers=alice.headers)
    status = (await client.get("/api/billing/status", headers=alice.headers)).json()
    assert (
        status["plan"] == ROOMY_PLAN == "premium"
        and status["tokens_limit"] == 20_000_000
        and status["projects_used"] == 1
    )
    start = datetime.fromisoformat(status["period_start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(status["period_end"].replace("Z", "+00:00"))
    assert end - start == timedelta(days=30)
    sub = (await client.get("/api/billing/subscription", headers=alice.headers)).json()["subscription"]
    assert sub["plan"] == ROOMY_PLAN and sub["provider"] is None and sub["plan_details"]["id"] == ROOMY_PLAN


async def test_checkout_without_a_configured_provider_is_503(client: httpx.AsyncClient, alice: UserHandle) -> None:
    response = await client.post(
        "/api/billing/create-checkout-session",
        json={"plan": "pro", "success_url": "https://a.test/ok"},
        headers=alice.headers,
    )
    assert response.status_code == 503
    webhook = await client.post("/api/webhooks/polar", content=b"{}", headers={"webhook-id": "x"})
    assert webhook.status_code == 503


async def test_usage_history_range_is_validated(client: httpx.AsyncClient, alice: UserHandle) -> None:
    async def history(query: str) -> httpx.Response:
        return await client.get(f"/api/billing/usage-history{query}", headers=alice.headers)

    ranged = (await history("?start_date=2024-02-27&end_date=2024-03-02")).json()
    assert [d["date"] for d in ranged["days"]] == ["2024-02-27", "2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02"]
    assert all(d["runs"] == 0 for d in ranged["days"]) and ranged["totals"]["total_tokens"] == 0
    assert len((await history("?start_date=2024-01-01&end_date=2024-12-31")).json()["days"]) == 366
    for query, field in (
        ("?start_date=2024-13-01", "start_date"),
        ("?end_date=yesterday", "end_date"),
        ("?start_date=2024-03-02&end_date=2024-03-01", "start_date"),
        ("?start_date=2023-01-01&end_date=2024-12-31", "end_date"),
        ("?start_date=" + "9" * 50, "start_date"),
    ):
        response = await history(query)
        assert response.status_code == 422 and response.json()["field"] == field, query


async def test_a_run_is_charged_once_even_when_recorded_concurrently(server: LiveServer, alice: UserHandle) -> None:
    run = AgentRun(id=uuid.uuid4(), owner_id=uuid.UUID(alice.user_id), model="scripted/demo")
    usage = Usage(40, 2, 42)
    results = await asyncio.gather(
        *(record_run_usage(server.app.state.services.settings, run=run, usage=usage) for _ in range(6))
    )
    assert sorted(results) == [False] * 5 + [True]
    assert await UsageEntry.filter(run_id=run.id).count() == 1
    assert (await BillingSubscription.get(user_id=alice.user_id)).tokens_used == 42
    assert await record_run_usage(server.app.state.services.settings, run=run, usage=Usage(1, 1, 2)) is False  # a retry
    assert (await BillingSubscription.get(user_id=alice.user_id)).tokens_used == 42


async def test_a_finishing_run_is_charged_once_whoever_finishes_it(
    client: httpx.AsyncClient, server: LiveServer, alice: UserHandle
) -> None:
    project = (await client.post("/api/projects", json={"name": "p"}, headers=alice.headers)).json()["project_id"]
    thread = (await client.post("/api/threads", json={"project_id": project}, headers=alice.headers)).json()[
        "thread_id"
    ]
    run_id = (
        await client.post(f"/api/thread/{thread}/agent/start", json={"prompt": "hi"}, headers=alice.headers)
    ).json()["agent_run_id"]
    # Races the executor (if this process runs it): whichever finish comes first is the one charge.
    services = server.app.state.services
    await lifecycle.finish(
        services, uuid.UUID(run_id), "stopped", prompt_tokens=7, completion_tokens=3, total_tokens=10
    )
    await lifecycle.finish(
        services, uuid.UUID(run_id), "failed", prompt_tokens=70, completion_tokens=30, total_tokens=100
    )
    for _ in range(200):
        if (await client.get(f"/api/agent-run/{run_id}/status", headers=alice.headers)).json()["status"] not in (
            "queued",
            "running",
        ):
            break
        await asyncio.sleep(0.05)
    entries = await UsageEntry.filter(run_id=run_id)
    assert len(entries) == 1 and entries[0].total_tokens in (10, (await AgentRun.get(id=run_id)).total_tokens)
    assert (await BillingSubscription.get(user_id=alice.user_id)).tokens_used == entries[0].total_tokens


async def test_billing_data_is_per_user(
    client: httpx.AsyncClient, server: LiveServer, alice: UserHandle, bob: UserHandle
) -> None:
    run = AgentRun(id=uuid.uuid4(), owner_id=uuid.UUID(alice.user_id), model="scripted/demo")
    await record_run_usage(server.app.state.services.settings, run=run, usage=Usage(10, 5, 15))
    await client.post("/api/billing/openrouter-key", json={"api_key": "sk-or-v1-" + "9" * 40}, headers=alice.headers)
    alice_status = (await client.get("/api/billing/status", headers=alice.headers)).json()
    bob_status = (await client.get("/api/billing/status", headers=bob.headers)).json()
    assert alice_status["tokens_used"] == 15 and alice_status["byok_key_configured"] is True
    assert bob_status["tokens_used"] == 0 and bob_status["byok_key_configured"] is False
    bob_history = (await client.get("/api/billing/usage-history", headers=bob.headers)).json()
    assert bob_history["totals"]["runs"] == 0
    assert (await client.delete("/api/billing/openrouter-key", headers=bob.headers)).json()["deleted"] is False
    assert (await client.get("/api/billing/openrouter-key/status", headers=alice.headers)).json()["configured"] is True


async def test_admin_quota_routes(client: httpx.AsyncClient, server: LiveServer, alice: UserHandle) -> None:
    run = AgentRun(id=uuid.uuid4(), owner_id=uuid.UUID(alice.user_id), model="scripted/demo")
    await record_run_usage(server.app.state.services.settings, run=run, usage=Usage(100, 23, 123))
    one = await client.get(f"/api/billing/admin/quota-status?user_id={alice.user_id}", headers=ADMIN)
    assert one.status_code == 200 and one.json()["user_id"] == alice.user_id and one.json()["tokens_used"] == 123
    summary = (await client.get("/api/billing/admin/quota-status?limit=200", headers=ADMIN)).json()
    assert summary["users"] >= 1 and summary["by_plan"][ROOMY_PLAN] >= 1
    assert any(row["user_id"] == alice.user_id and row["tokens_used"] == 123 for row in summary["top"])
    reset = await client.post("/api/billing/admin/reset-quotas", json={"user_id": alice.user_id}, headers=ADMIN)
    assert reset.json() == {"reset": 1}
    assert (await client.get("/api/billing/status", headers=alice.headers)).json()["tokens_used"] == 0
    assert await UsageEntry.filter(run_id=run.id).count() == 1  # the ledger keeps its entries


async def test_admin_input_and_access(client: httpx.AsyncClient, alice: UserHandle) -> None:
    for body, status in (
        ({}, 422),
        ({"all": "yes"}, 422),
        ({"user_id": alice.user_id, "all": True}, 422),
        ({"user_id": "not-a-uuid"}, 404),
        ({"user_id": str(uuid.uuid4())}, 404),
    ):
        response = await client.post("/api/billing/admin/reset-quotas", json=body, headers=ADMIN)
        assert response.status_code == status, (body, response.text)
    assert (await client.get("/api/billing/admin/quota-status?user_id=nope", headers=ADMIN)).status_code == 404
    assert (await client.get("/api/billing/admin/quota-status?limit=0", headers=ADMIN)).status_code == 422
    assert (await client.post("/api/billing/admin/reset-quotas", json={"all": True}, headers=ADMIN)).status_code == 200
    for method, path in (
        ("POST", "reset-quotas"),
        ("GET", "quota-status"),
        ("GET", "openrouter-cache/info"),
        ("POST", "openrouter-cache/warm"),
        ("POST", "openrouter-cache/clear"),
    ):
        assert (await client.request(method, f"/api/billing/admin/{path}")).status_code == 401, path
        assert (await client.request(method, f"/api/billing/admin/{path}", headers=alice.headers)).status_code == 403, (
            path
        )
        assert (
            await client.request(method, f"/api/billing/admin/{path}", headers={"X-API-Key": "wrong"})
        ).status_code == 401, path


async def test_admin_model_cache_routes(client: httpx.AsyncClient) -> None:
    info = await client.get("/api/billing/admin/openrouter-cache/info", headers=ADMIN)
    assert info.status_code == 200 and "ttl_seconds" in info.json() and info.json()["providers"] == []
    warmed = await client.post("/api/billing/admin/openrouter-cache/warm", headers=ADMIN)
    assert warmed.status_code == 200 and "entries" in warmed.json()
    cleared = await client.post("/api/billing/admin/openrouter-cache/clear", headers=ADMIN)
    assert cleared.status_code == 200 and isinstance(cleared.json()["cleared"], int)


async def test_billing_routes_are_in_openapi(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    for path in (
        "/api/billing/status",
        "/api/billing/usage-history",
        "/api/billing/create-checkout-session",
        "/api/billing/payment-methods/region/{country_code}",
        "/api/billing/admin/reset-quotas",
        "/api/webhooks/polar",
        "/api/webhooks/stripe",
        "/api/billing/openrouter-key/test",
    ):
        assert path in paths, path
    assert paths["/api/billing/admin/reset-quotas"]["post"]["x-auth"] == "admin"
    assert paths["/api/webhooks/stripe"]["post"]["x-auth"] == "webhook"


async def test_period_rolls_over_with_a_fresh_allowance(client: httpx.AsyncClient, server: LiveServer) -> None:
    user = await register_user(client)
    run = AgentRun(id=uuid.uuid4(), owner_id=uuid.UUID(user.user_id), model="scripted/demo")
    await record_run_usage(server.app.state.services.settings, run=run, usage=Usage(1, 1, 2))
    long_ago = datetime.now(UTC) - timedelta(days=75)
    await BillingSubscription.filter(user_id=user.user_id).update(
        current_period_start=long_ago, current_period_end=long_ago + timedelta(days=30)
    )
    status = (await client.get("/api/billing/status", headers=user.headers)).json()
    start = datetime.fromisoformat(status["period_start"].replace("Z", "+00:00"))
    assert status["tokens_used"] == 0 and start == long_ago + timedelta(days=60)
    assert datetime.fromisoformat(status["period_end"].replace("Z", "+00:00")) > datetime.now(UTC)
