"""Polar (polar.sh): checkouts through POST /v1/checkouts/ with a bearer token, subscriptions updated with
PATCH /v1/subscriptions/{id}, webhooks signed per Standard Webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runplane.billing.plans import PlanBook
from runplane.billing.providers import (
    Checkout,
    CheckoutRequest,
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
from runplane.billing.signatures import SignatureError, verify_standard

SUBSCRIPTION_EVENTS = frozenset(
    {
        "subscription.created",
        "subscription.active",
        "subscription.updated",
        "subscription.canceled",
        "subscription.uncanceled",
        "subscription.revoked",
    }
)


class PolarProvider(ProviderAPI):
    name, label = "polar", "Polar"
    credential_setting, webhook_secret_setting = "RUNPLANE_POLAR_ACCESS_TOKEN", "RUNPLANE_POLAR_WEBHOOK_SECRET"

    async def create_checkout(self, request: CheckoutRequest) -> Checkout:
        body: dict[str, Any] = {
            "products": [request.price_id],
            "success_url": request.success_url,
            "external_customer_id": request.user_id,
            # Copied by Polar onto the subscription: its webhooks then name our user and plan.
            "metadata": {"user_id": request.user_id, "plan": request.plan_id},
        }
        if request.email:
            body["customer_email"] = request.email
        if request.cancel_url:
            body["return_url"] = request.cancel_url
        return await self._create_checkout("/v1/checkouts/", "a checkout", json=body)

    async def change_plan(self, subscription_id: str, price_id: str) -> None:
        await self._call("PATCH", subscription_path(subscription_id), json={"product_id": price_id})

    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> None:
        await self._call("PATCH", subscription_path(subscription_id), json={"cancel_at_period_end": cancel})

    def _auth(self, credential: str) -> dict[str, Any]:
        return {"headers": {"Authorization": f"Bearer {credential}", "Accept": "application/json"}}

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, *, now: float) -> WebhookEvent:
        msg_id = verify_standard(self._webhook_key(), headers, body, now=now, tolerance=self._tolerance)
        payload = json_object(body)
        kind, data = payload.get("type"), payload.get("data")
        if not isinstance(kind, str) or not isinstance(data, dict):
            raise SignatureError("Polar event needs a string `type` and an object `data`", malformed=True)
        # The webhook-id is the message id: Polar keeps it across retries of one delivery.
        occurred = parse_time(payload.get("timestamp")) or parse_time(data.get("modified_at"))
        return WebhookEvent(msg_id, kind, occurred, data)

    def subscription_change(self, event: WebhookEvent, plans: PlanBook) -> SubscriptionChange | None:
        if event.type not in SUBSCRIPTION_EVENTS:
            return None
        data = event.data
        status = "revoked" if event.type == "subscription.revoked" else str(data.get("status") or "")
        state = state_of(status)
        if state is None:
            return None
        metadata, customer = mapping(data.get("metadata")), mapping(data.get("customer"))
        return SubscriptionChange(
            state=state,
            status=status,
            user_ref=text_or_none(metadata.get("user_id")) or text_or_none(customer.get("external_id")),
            plan_id=self._plan_id(plans, text_or_none(data.get("product_id")), metadata),
            subscription_id=text_or_none(data.get("id")),
            customer_id=text_or_none(data.get("customer_id")),
            period_start=parse_time(data.get("current_period_start")),
            period_end=parse_time(data.get("current_period_end")),
            cancel_at_period_end=data.get("cancel_at_period_end") is True,
        )
