"""Stripe: checkout sessions through POST /v1/checkout/sessions (form-encoded, secret key as basic auth),
subscriptions updated with POST /v1/subscriptions/{id}, webhooks signed with Stripe-Signature."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runplane.billing.plans import PlanBook
from runplane.billing.providers import (
    Checkout,
    CheckoutRequest,
    PaymentProviderError,
    ProviderAPI,
    SubscriptionChange,
    WebhookEvent,
    json_object,
    mapping,
    parse_time,
    state_of,
    subscription_path,
    text_or_none,
)
from runplane.billing.signatures import SignatureError, verify_stripe

SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    }
)


STRIPE_API_VERSION = "2024-06-20"


class StripeProvider(ProviderAPI):
    name, label = "stripe", "Stripe"
    credential_setting, webhook_secret_setting = "RUNPLANE_STRIPE_SECRET_KEY", "RUNPLANE_STRIPE_WEBHOOK_SECRET"

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        form = {
            "mode": "subscription",
            "line_items[0][price]": request.price_id,
            "line_items[0][quantity]": "1",
            "success_url": request.success_url,
            "client_reference_id": request.user_id,
            "metadata[user_id]": request.user_id,
            "metadata[plan]": request.plan_id,
            # Copied onto the subscription, so its own events name our user and plan too.
            "subscription_data[metadata][user_id]": request.user_id,
            "subscription_data[metadata][plan]": request.plan_id,
        }
        if request.cancel_url:
            form["cancel_url"] = request.cancel_url
        if request.email:
            form["customer_email"] = request.email
        return await self._create_checkout("/v1/checkout/sessions", "a checkout session", data=form)

    async def change_plan(self, subscription_id: str, price_id: str) -> None:
        # Replacing the price needs the subscription item's id; without it Stripe would add a second item.
        path = subscription_path(subscription_id)
        current = await self._call("GET", path)
        items = (current.get("items") or {}).get("data") or []
        if not items or not text_or_none(items[0].get("id")):
            raise PaymentProviderError("Stripe subscription has no item to change")
        form = {"items[0][id]": items[0]["id"], "items[0][price]": price_id, "proration_behavior": "create_prorations"}
        await self._call("POST", path, data=form)

    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> None:
        form = {"cancel_at_period_end": "true" if cancel else "false"}
        await self._call("POST", subscription_path(subscription_id), data=form)

    def _auth(self, credential: str) -> dict[str, Any]:
        # The secret key as basic auth's user name; the API version the requests and events here are written
        # for, rather than whatever version the account defaults to (which changes when the account upgrades).
        return {"auth": (credential, ""), "headers": {"Stripe-Version": STRIPE_API_VERSION}}

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, *, now: float) -> WebhookEvent:
        verify_stripe(self._webhook_key(), headers.get("stripe-signature"), body, now=now, tolerance=self._tolerance)
        payload = json_object(body)
        event_id, kind = text_or_none(payload.get("id")), text_or_none(payload.get("type"))
        obj = mapping(payload.get("data")).get("object")
        if event_id is None or len(event_id) > 200 or kind is None or not isinstance(obj, dict):
            raise SignatureError("Stripe event needs `id`, `type` and `data.object`", malformed=True)
        return WebhookEvent(event_id, kind, parse_time(payload.get("created")), obj)

    def subscription_change(self, event: WebhookEvent, plans: PlanBook) -> SubscriptionChange | None:
        if event.type == "checkout.session.completed":
            return self._checkout_completed(event.data)
        if event.type not in SUBSCRIPTION_EVENTS:
            return None
        sub = event.data
        status = "canceled" if event.type == "customer.subscription.deleted" else str(sub.get("status") or "")
        state = state_of(status)
        if state is None:
            return None
        metadata, item = mapping(sub.get("metadata")), _first_item(sub)
        price_id = text_or_none(mapping(item.get("price")).get("id"))
        # Newer API versions moved the period onto the subscription items.
        return SubscriptionChange(
            state=state,
            status=status,
            user_ref=text_or_none(metadata.get("user_id")),
            plan_id=self._plan_id(plans, price_id, metadata),
            subscription_id=text_or_none(sub.get("id")),
            customer_id=text_or_none(sub.get("customer")),
            period_start=parse_time(sub.get("current_period_start") or item.get("current_period_start")),
            period_end=parse_time(sub.get("current_period_end") or item.get("current_period_end")),
            cancel_at_period_end=sub.get("cancel_at_period_end") is True,
        )

    def _checkout_completed(self, session: dict[str, Any]) -> SubscriptionChange | None:
        if session.get("mode") != "subscription" or session.get("status") not in (None, "complete"):
            return None
        metadata = mapping(session.get("metadata"))
        return SubscriptionChange(
            state="active",
            status="active",
            user_ref=text_or_none(session.get("client_reference_id")) or text_or_none(metadata.get("user_id")),
            plan_id=text_or_none(metadata.get("plan")),
            subscription_id=text_or_none(session.get("subscription")),
            customer_id=text_or_none(session.get("customer")),
        )


def _first_item(sub: dict[str, Any]) -> dict[str, Any]:
    items = sub.get("items")
    data = items.get("data") if isinstance(items, dict) else None
    first = data[0] if isinstance(data, list) and data else None
    return first if isinstance(first, dict) else {}
