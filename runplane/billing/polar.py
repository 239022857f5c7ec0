"""Polar (polar.sh): checkouts through POST /v1/checkouts/ with a bearer token, subscriptions updated with
PATCH /v1/subscriptions/{id}, webhooks signed per Standard Webhooks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from runplane.billing.plans import PlanBook
from runplane.billing.providers import (
    Checkout,
    CheckoutRequest,
    PaymentProviderError,
    ProviderNotConfigured,
    SubscriptionChange,
    WebhookEvent,
    call_api,
    json_object,
    mapping,
    parse_time,
    state_of,
    text_or_none,
)
from runplane.billing.signatures import SignatureError, verify_standard

SUBSCRIPTION_EVENTS = frozenset({
    "subscription.created", "subscription.active", "subscription.updated", "subscription.canceled",
    "subscription.uncanceled", "subscription.revoked",
})


class PolarProvider:
    name = "polar"

    def __init__(self, api_url: str, access_token: str | None, webhook_secret: str | None, *, tolerance: int) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = access_token
        self._webhook_secret = webhook_secret
        self._tolerance = tolerance

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
        created = await self._call("POST", "/v1/checkouts/", json=body)
        if not text_or_none(created.get("id")) or not text_or_none(created.get("url")):
            raise PaymentProviderError("Polar answered a checkout without id or url")
        return Checkout(created["id"], created["url"], parse_time(created.get("expires_at")))

    async def change_plan(self, subscription_id: str, price_id: str) -> None:
        await self._call("PATCH", f"/v1/subscriptions/{quote(subscription_id, safe='')}", json={"product_id": price_id})

    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> None:
        await self._call("PATCH", f"/v1/subscriptions/{quote(subscription_id, safe='')}", json={"cancel_at_period_end": cancel})

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if not self._token:
            raise ProviderNotConfigured("Polar is not configured (RUNPLANE_POLAR_ACCESS_TOKEN)")
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        return await call_api(method, self.api_url + path, what="Polar", headers=headers, **kwargs)

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, *, now: float) -> WebhookEvent:
        if not self._webhook_secret:
            raise ProviderNotConfigured("Polar webhooks are not configured (RUNPLANE_POLAR_WEBHOOK_SECRET)")
        msg_id = verify_standard(self._webhook_secret, headers, body, now=now, tolerance=self._tolerance)
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
        product_id = text_or_none(data.get("product_id"))
        plan = plans.by_checkout_id(self.name, product_id) if product_id else None
        return SubscriptionChange(
            state=state, status=status,
            user_ref=text_or_none(metadata.get("user_id")) or text_or_none(customer.get("external_id")),
            plan_id=plan.id if plan else text_or_none(metadata.get("plan")),
            subscription_id=text_or_none(data.get("id")), customer_id=text_or_none(data.get("customer_id")),
            period_start=parse_time(data.get("current_period_start")), period_end=parse_time(data.get("current_period_end")),
            cancel_at_period_end=data.get("cancel_at_period_end") is True,
        )

