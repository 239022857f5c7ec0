"""Checkout sessions through the fake Polar and Stripe APIs, and plan changes with the provider."""

from __future__ import annotations

import base64

import httpx

from tests.billing.conftest import POLAR_TOKEN, STRIPE_KEY, SUCCESS_URL, BillingServer, status_of
from tests.support import UserHandle, register_user


async def checkout(client: httpx.AsyncClient, user: UserHandle, **body: object) -> httpx.Response:
    return await client.post(
        "/api/billing/create-checkout-session", json={"success_url": SUCCESS_URL, **body}, headers=user.headers
    )


async def test_polar_checkout_session(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    response = await checkout(bclient, user, plan="pro", cancel_url="https://app.runplane.test/billing")
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["provider"] == "polar" and session["plan"] == "pro" and session["expires_at"]
    assert session["url"].startswith(billing.polar.base_url) and session["checkout_id"].startswith("chk_")
    sent = billing.polar.recorded("POST", "/v1/checkouts/")[-1]
    assert sent.headers["authorization"] == f"Bearer {POLAR_TOKEN}"
    assert sent.body["products"] == ["prod_pro"] and sent.body["success_url"] == SUCCESS_URL
    assert sent.body["external_customer_id"] == user.user_id and sent.body["customer_email"] == user.email
    assert sent.body["metadata"] == {"user_id": user.user_id, "plan": "pro"}
    assert sent.body["return_url"] == "https://app.runplane.test/billing"


async def test_stripe_checkout_session_is_form_encoded_with_the_secret_key(
    bclient: httpx.AsyncClient, billing: BillingServer
) -> None:
    user = await register_user(bclient)
    response = await checkout(bclient, user, plan="premium", provider="stripe")
    assert response.status_code == 200, response.text
    assert response.json()["checkout_id"].startswith("cs_test_") and response.json()["provider"] == "stripe"
    sent = billing.stripe.recorded("POST", "/v1/checkout/sessions")[-1]
    assert sent.headers["authorization"] == "Basic " + base64.b64encode(f"{STRIPE_KEY}:".encode()).decode()
    assert sent.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert sent.body["mode"] == "subscription" and sent.body["line_items[0][price]"] == "price_premium"
    assert (
        sent.body["client_reference_id"] == user.user_id and sent.body["subscription_data[metadata][plan]"] == "premium"
    )


async def test_checkout_input_is_validated(bclient: httpx.AsyncClient) -> None:
    user = await register_user(bclient)
    cases = [
        ({"plan": "gold"}, 422, "plan"),
        ({"plan": "free"}, 422, "plan"),
        ({"plan": 7}, 422, "plan"),
        ({}, 422, "plan"),
        ({"plan": "pro", "provider": "paypal"}, 422, "provider"),
        ({"plan": "byok", "provider": "polar"}, 422, "plan"),  # no Polar product for that plan
        ({"plan": "pro", "success_url": "javascript:alert(1)"}, 422, "success_url"),
        ({"plan": "pro", "success_url": "https://x.test/" + "a" * 3000}, 422, "success_url"),
        ({"plan": "pro", "cancel_url": ["https://x.test"]}, 422, "cancel_url"),
    ]
    for body, status, field in cases:
        response = await checkout(bclient, user, **body)
        assert response.status_code == status, (body, response.text)
        assert response.json()["field"] == field, body
    malformed = await bclient.post("/api/billing/create-checkout-session", content=b"{nope", headers=user.headers)
    assert malformed.status_code == 400
    array = await bclient.post("/api/billing/create-checkout-session", json=["pro"], headers=user.headers)
    assert array.status_code == 422


async def test_provider_failure_is_503_not_500(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    billing.polar.fail_next(500)
    response = await checkout(bclient, user, plan="pro")
    assert response.status_code == 503 and "Polar" in response.json()["detail"]
    billing.stripe.fail_next(402)
    response = await checkout(bclient, user, plan="pro", provider="stripe")
    assert response.status_code == 503 and response.json()["provider"] == "stripe"


async def test_checkout_needs_authentication(bclient: httpx.AsyncClient) -> None:
    response = await bclient.post("/api/billing/create-checkout-session", json={"plan": "pro"})
    assert response.status_code == 401


async def test_upgrade_without_subscription_requires_checkout(bclient: httpx.AsyncClient) -> None:
    user = await register_user(bclient)
    response = await bclient.post(
        "/api/billing/upgrade-plan", json={"plan": "pro", "success_url": SUCCESS_URL}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "checkout_required" and body["checkout"]["plan"] == "pro"
    assert body["subscription"]["plan"] == "free"
    same = await bclient.post("/api/billing/upgrade-plan", json={"plan": "free"}, headers=user.headers)
    assert same.status_code == 409


async def test_upgrade_and_cancel_through_the_provider(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    session = (await checkout(bclient, user, plan="pro")).json()
    subscription = billing.polar.complete_checkout(session["checkout_id"])
    delivered = await billing.polar.deliver(billing.webhook_url("polar"), "subscription.active", subscription)
    assert delivered.status_code == 200, delivered.text
    assert (await status_of(bclient, user))["plan"] == "pro"

    upgraded = await bclient.post("/api/billing/upgrade-plan", json={"plan": "premium"}, headers=user.headers)
    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["status"] == "updated" and upgraded.json()["subscription"]["plan"] == "premium"
    assert billing.polar.subscriptions[subscription["id"]]["product_id"] == "prod_premium"
    status = await status_of(bclient, user)
    assert status["plan"] == "premium" and status["tokens_limit"] is None and status["tokens_remaining"] is None

    cancelled = await bclient.post("/api/billing/upgrade-plan", json={"plan": "free"}, headers=user.headers)
    assert (
        cancelled.json()["status"] == "cancel_scheduled"
        and cancelled.json()["subscription"]["cancel_at_period_end"] is True
    )
    assert billing.polar.subscriptions[subscription["id"]]["cancel_at_period_end"] is True
    assert (await status_of(bclient, user))["plan"] == "premium"  # paid until the period ends
    kept = await bclient.post("/api/billing/upgrade-plan", json={"plan": "premium"}, headers=user.headers)
    assert (
        kept.json()["status"] == "cancel_reverted"
        and billing.polar.subscriptions[subscription["id"]]["cancel_at_period_end"] is False
    )
