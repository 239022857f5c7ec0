"""Webhooks from the fake Polar and Stripe: signatures, replay window, idempotency, activation and cancellation."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.billing.conftest import SUCCESS_URL, BillingServer, make_thread, run_to_end, status_of
from tests.support import UserHandle, register_user


async def paid_polar_subscription(
    client: httpx.AsyncClient, billing: BillingServer, user: UserHandle, plan: str = "pro"
) -> dict[str, Any]:
    session = await client.post(
        "/api/billing/create-checkout-session", json={"plan": plan, "success_url": SUCCESS_URL}, headers=user.headers
    )
    assert session.status_code == 200, session.text
    return billing.polar.complete_checkout(session.json()["checkout_id"])


async def test_polar_activation_lifts_the_quota(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    thread_id = await make_thread(bclient, user)
    await run_to_end(bclient, user, thread_id)
    assert (
        await bclient.post(f"/api/thread/{thread_id}/agent/start", json={}, headers=user.headers)
    ).status_code == 402

    subscription = await paid_polar_subscription(bclient, billing, user)
    response = await billing.polar.deliver(billing.webhook_url("polar"), "subscription.active", subscription)
    assert response.status_code == 200 and response.json()["status"] == "processed"
    status = await status_of(bclient, user)
    assert status["plan"] == "pro" and status["tokens_used"] == 0 and status["tokens_limit"] == 1_000_000
    details = (await bclient.get("/api/billing/subscription", headers=user.headers)).json()["subscription"]
    assert details["provider"] == "polar" and details["subscription_id"] == subscription["id"]
    assert details["current_period_end"] == subscription["current_period_end"]
    assert (await run_to_end(bclient, user, thread_id, prompt="paid now"))["status"] == "completed"


async def test_same_event_twice_changes_nothing(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    subscription = await paid_polar_subscription(bclient, billing, user)
    url = billing.webhook_url("polar")
    first = await billing.polar.deliver(url, "subscription.active", subscription, msg_id="msg_once_" + user.user_id)
    assert first.json()["status"] == "processed"
    # The user then cancels for good; a redelivery of the old activation must not bring the plan back.
    revoked = {**subscription, "status": "canceled"}
    assert (await billing.polar.deliver(url, "subscription.revoked", revoked)).json()["status"] == "processed"
    assert (await status_of(bclient, user))["plan"] == "free"
    again = await billing.polar.deliver(url, "subscription.active", subscription, msg_id="msg_once_" + user.user_id)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert (await status_of(bclient, user))["plan"] == "free"


async def test_polar_cancel_at_period_end_keeps_the_plan_until_revoked(
    bclient: httpx.AsyncClient, billing: BillingServer
) -> None:
    user = await register_user(bclient)
    subscription = await paid_polar_subscription(bclient, billing, user)
    url = billing.webhook_url("polar")
    await billing.polar.deliver(url, "subscription.active", subscription)
    canceled = {**subscription, "cancel_at_period_end": True}
    assert (await billing.polar.deliver(url, "subscription.canceled", canceled)).json()["status"] == "processed"
    status = await status_of(bclient, user)
    assert status["plan"] == "pro" and status["cancel_at_period_end"] is True
    await billing.polar.deliver(url, "subscription.revoked", {**canceled, "status": "canceled"})
    status = await status_of(bclient, user)
    assert status["plan"] == "free" and status["cancel_at_period_end"] is False


async def test_late_older_event_is_stale(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    subscription = await paid_polar_subscription(bclient, billing, user)
    url = billing.webhook_url("polar")
    now = datetime.now(UTC)
    await billing.polar.deliver(url, "subscription.revoked", {**subscription, "status": "canceled"}, occurred_at=now)
    late = await billing.polar.deliver(url, "subscription.active", subscription, occurred_at=now - timedelta(minutes=1))
    assert late.json()["status"] == "stale"
    assert (await status_of(bclient, user))["plan"] == "free"


async def test_polar_signature_and_replay_window(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    subscription = await paid_polar_subscription(bclient, billing, user)
    url = billing.webhook_url("polar")
    forged = await billing.polar.deliver(url, "subscription.active", subscription, secret="whsec_" + "Zm9yZ2Vk")
    assert forged.status_code == 403
    replayed = await billing.polar.deliver(url, "subscription.active", subscription, timestamp=int(time.time()) - 900)
    assert replayed.status_code == 403 and "tolerance" in replayed.json()["detail"]
    future = await billing.polar.deliver(url, "subscription.active", subscription, timestamp=int(time.time()) + 900)
    assert future.status_code == 403
    headers, body = billing.polar.signed_delivery("subscription.active", subscription)
    tampered = await bclient.post(url, content=body.replace(b'"pro"', b'"premium"'), headers=headers)
    assert tampered.status_code == 403
    missing = await bclient.post(url, content=body, headers={"content-type": "application/json"})
    assert missing.status_code == 400
    assert (await status_of(bclient, user))["plan"] == "free"  # none of them applied


async def test_malformed_but_signed_bodies_are_400(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    from runplane.billing.signatures import sign_standard, sign_stripe

    url = billing.webhook_url("polar")
    ts = int(time.time())
    for body in (b"not json", b"[1,2]", b'{"type": 5, "data": {}}', b'{"type": "subscription.active"}'):
        headers = {
            "webhook-id": "msg_bad",
            "webhook-timestamp": str(ts),
            "webhook-signature": sign_standard(billing.polar.webhook_secret, "msg_bad", ts, body),
        }
        assert (await bclient.post(url, content=body, headers=headers)).status_code == 400, body
    # b"\xb2" is "²" in Latin-1, the decoding of header bytes: str.isdigit() says yes and int() raises.
    for header in ("", "t=abc,v1=00", "v1=00", "t=1", "x" * 5000, b"t=\xb2,v1=00", "t=１２,v1=00".encode()):
        response = await bclient.post(
            billing.webhook_url("stripe"), content=b"{}", headers={"stripe-signature": header}
        )
        assert response.status_code == 400, header
    for raw_ts in (b"\xb2", b"\xb9\xb2", "١٢".encode(), b"1_0", b"+12"):
        headers = {"webhook-id": "msg_digits", "webhook-timestamp": raw_ts, "webhook-signature": "v1,AAAA"}
        assert (await bclient.post(url, content=b"{}", headers=headers)).status_code == 400, raw_ts
    body = b'{"id": "evt_x", "type": "x"}'
    response = await bclient.post(
        billing.webhook_url("stripe"),
        content=body,
        headers={"stripe-signature": sign_stripe(billing.stripe.webhook_secret, ts, body)},
    )
    assert response.status_code == 400  # no data.object


async def test_unknown_events_are_recorded_and_ignored(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    response = await billing.polar.deliver(billing.webhook_url("polar"), "order.paid", {"id": "ord_1"})
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    anonymous = await billing.polar.deliver(
        billing.webhook_url("polar"),
        "subscription.active",
        {"id": "sub_nobody", "status": "active", "product_id": "prod_pro"},
    )
    assert anonymous.json()["status"] == "ignored"


async def test_stripe_checkout_completed_then_subscription_deleted(
    bclient: httpx.AsyncClient, billing: BillingServer
) -> None:
    user = await register_user(bclient)
    created = await bclient.post(
        "/api/billing/create-checkout-session",
        json={"plan": "pro", "provider": "stripe", "success_url": SUCCESS_URL},
        headers=user.headers,
    )
    session, subscription = billing.stripe.complete_checkout(created.json()["checkout_id"])
    url = billing.webhook_url("stripe")
    done = await billing.stripe.deliver(url, "checkout.session.completed", session)
    assert done.status_code == 200 and done.json()["status"] == "processed"
    assert (await status_of(bclient, user))["plan"] == "pro"
    details = (await bclient.get("/api/billing/subscription", headers=user.headers)).json()["subscription"]
    assert details["provider"] == "stripe" and details["subscription_id"] == subscription["id"]

    updated = await billing.stripe.deliver(url, "customer.subscription.updated", subscription)
    assert updated.json()["status"] == "processed"
    period_end = datetime.fromtimestamp(subscription["items"]["data"][0]["current_period_end"], UTC)
    details = (await bclient.get("/api/billing/subscription", headers=user.headers)).json()["subscription"]
    assert datetime.fromisoformat(details["current_period_end"].replace("Z", "+00:00")) == period_end

    # Upgrading a Stripe subscription replaces its item's price.
    upgraded = await bclient.post("/api/billing/upgrade-plan", json={"plan": "premium"}, headers=user.headers)
    assert upgraded.json()["status"] == "updated"
    assert billing.stripe.subscriptions[subscription["id"]]["items"]["data"][0]["price"]["id"] == "price_premium"

    deleted = await billing.stripe.deliver(url, "customer.subscription.deleted", {**subscription, "status": "canceled"})
    assert deleted.json()["status"] == "processed"
    status = await status_of(bclient, user)
    assert status["plan"] == "free"
    assert (await bclient.get("/api/billing/subscription", headers=user.headers)).json()["subscription"][
        "provider"
    ] is None


async def test_stripe_signature_is_checked(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    session = {
        "id": "cs_forged",
        "mode": "subscription",
        "status": "complete",
        "client_reference_id": user.user_id,
        "metadata": {"plan": "premium"},
        "subscription": "sub_forged",
    }
    url = billing.webhook_url("stripe")
    forged = await billing.stripe.deliver(url, "checkout.session.completed", session, secret="whsec_wrong")
    assert forged.status_code == 403
    old = await billing.stripe.deliver(url, "checkout.session.completed", session, timestamp=int(time.time()) - 600)
    assert old.status_code == 403
    assert (await status_of(bclient, user))["plan"] == "free"
    event_id = "evt_once_" + user.user_id
    assert (await billing.stripe.deliver(url, "checkout.session.completed", session, event_id=event_id)).json()[
        "status"
    ] == "processed"
    assert (await billing.stripe.deliver(url, "checkout.session.completed", session, event_id=event_id)).json()[
        "status"
    ] == "duplicate"
