"""Quota: a run is refused with 402 once the period's tokens are spent, charged once, and reset by an admin."""

from __future__ import annotations

import httpx

from tests.billing.conftest import FREE_TOKENS, BillingServer, make_thread, run_to_end, status_of
from tests.conftest import ADMIN_API_KEY
from tests.support import register_user


async def test_new_user_is_on_free_plan(bclient: httpx.AsyncClient) -> None:
    user = await register_user(bclient)
    status = await status_of(bclient, user)
    assert status["plan"] == "free" and status["status"] == "active"
    assert (
        status["tokens_used"] == 0
        and status["tokens_limit"] == FREE_TOKENS
        and status["tokens_remaining"] == FREE_TOKENS
    )
    assert status["can_run"] is True and status["quota_exhausted"] is False
    assert status["limits"] == {"projects": 3, "deployments": 1}


async def test_exhausted_quota_refuses_runs_with_402(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    thread_id = await make_thread(bclient, user)
    run = await run_to_end(bclient, user, thread_id)
    assert run["status"] == "completed"
    total = run["usage"]["total_tokens"]
    assert total > FREE_TOKENS
    status = await status_of(bclient, user)
    assert status["tokens_used"] == total and status["tokens_remaining"] == 0 and status["can_run"] is False

    refused = await bclient.post(f"/api/thread/{thread_id}/agent/start", json={"prompt": "again"}, headers=user.headers)
    assert refused.status_code == 402, refused.text
    body = refused.json()
    assert body["code"] == "QUOTA_EXCEEDED" and "upgrade" in body["detail"]
    assert (
        body["plan"] == "free"
        and body["tokens_used"] == total
        and body["tokens_limit"] == FREE_TOKENS
        and body["period_end"]
    )
    runs = (await bclient.get(f"/api/thread/{thread_id}/agent-runs", headers=user.headers)).json()["agent_runs"]
    assert len(runs) == 1  # nothing was queued

    reset = await bclient.post(
        "/api/billing/admin/reset-quotas", json={"user_id": user.user_id}, headers={"X-API-Key": ADMIN_API_KEY}
    )
    assert reset.status_code == 200 and reset.json() == {"reset": 1}
    assert (await status_of(bclient, user))["tokens_used"] == 0
    assert (await run_to_end(bclient, user, thread_id, prompt="once more"))["status"] == "completed"


async def test_usage_history_counts_each_run_once(bclient: httpx.AsyncClient) -> None:
    user = await register_user(bclient)
    thread_id = await make_thread(bclient, user)
    run = await run_to_end(bclient, user, thread_id)
    history = (await bclient.get("/api/billing/usage-history", headers=user.headers)).json()
    assert len(history["days"]) == 30 and history["days"][-1]["date"] == history["end_date"]
    today = history["days"][-1]
    assert today["runs"] == 1 and today["total_tokens"] == run["usage"]["total_tokens"] == today["platform_tokens"]
    assert history["totals"]["total_tokens"] == run["usage"]["total_tokens"]
