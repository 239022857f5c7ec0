"""Payment providers behind one interface: hosted checkout, plan changes, and signed webhooks that say
what happened to a subscription. Polar (billing/polar.py) and Stripe (billing/stripe.py) implement it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx

from runplane.billing.plans import PlanBook
from runplane.billing.signatures import SignatureError
from runplane.config import Settings

HTTP_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
# Subscription statuses shared by Polar and Stripe, and what they mean for the plan.
ACTIVE_STATUSES = frozenset({"active", "trialing"})
GRACE_STATUSES = frozenset({"past_due"})
ENDED_STATUSES = frozenset({"canceled", "unpaid", "incomplete_expired", "revoked"})


class PaymentProviderError(Exception):
    """The provider refused a call or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class ProviderNotConfigured(Exception):
    pass


@dataclass(frozen=True)
class CheckoutRequest:
    plan_id: str
    price_id: str  # the provider's product (Polar) or price (Stripe) id of the plan
    user_id: str
    email: str | None
    success_url: str
    cancel_url: str | None


@dataclass(frozen=True)
class Checkout:
    id: str
    url: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class WebhookEvent:
    id: str
    type: str
    occurred_at: datetime | None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SubscriptionChange:
    """What a webhook says about one subscription, in provider-neutral terms."""

    state: Literal["active", "past_due", "ended"]
    status: str
    user_ref: str | None = None  # our user id as we sent it in the checkout metadata
    plan_id: str | None = None
    subscription_id: str | None = None
    customer_id: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    cancel_at_period_end: bool = False


class PaymentGateway(Protocol):
    """The client of one payment provider (Polar, Stripe): checkouts, plan changes, webhooks. The provider's
    name is models.choices.PaymentProvider."""

    name: str

    async def create_checkout(self, request: CheckoutRequest) -> Checkout: ...

    async def change_plan(self, subscription_id: str, price_id: str) -> None: ...

    async def set_cancel_at_period_end(self, subscription_id: str, cancel: bool) -> None: ...

    def verify_webhook(self, headers: Mapping[str, str], body: bytes, *, now: float) -> WebhookEvent: ...

    def subscription_change(self, event: WebhookEvent, plans: PlanBook) -> SubscriptionChange | None: ...


class ProviderAPI:
    """The HTTP side Polar and Stripe share: a JSON API under `api_url` called with a credential, and a webhook
    secret. Each provider says how its credential authenticates (`_auth`) and names its settings."""

    name: str
    label: str  # the provider in messages
    credential_setting: str
    webhook_secret_setting: str

    def __init__(
        self,
        api_url: str,
        credential: str | None,
        webhook_secret: str | None,
        *,
        tolerance: int,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._credential = credential
        self._webhook_secret = webhook_secret
        self._tolerance = tolerance
        self._http = http  # the process's pooled client for this provider (Services.http); None: one per call

    def _auth(self, credential: str) -> dict[str, Any]:
        """The httpx request arguments that authenticate a call."""
        raise NotImplementedError

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if not self._credential:
            raise ProviderNotConfigured(f"{self.label} is not configured ({self.credential_setting})")
        return await call_api(
            method, self.api_url + path, what=self.label, http=self._http, **self._auth(self._credential), **kwargs
        )

    async def _create_checkout(self, path: str, what: str, **kwargs: Any) -> Checkout:
        created = await self._call("POST", path, **kwargs)
        if not text_or_none(created.get("id")) or not text_or_none(created.get("url")):
            raise PaymentProviderError(f"{self.label} answered {what} without id or url")
        return Checkout(created["id"], created["url"], parse_time(created.get("expires_at")))

    def _plan_id(self, plans: PlanBook, checkout_id: str | None, metadata: dict[str, Any]) -> str | None:
        """A subscription's plan: by the provider's product or price id, else as our checkout metadata named it."""
        plan = plans.by_checkout_id(self.name, checkout_id) if checkout_id else None
        return plan.id if plan else text_or_none(metadata.get("plan"))

    def _webhook_key(self) -> str:
        if not self._webhook_secret:
            raise ProviderNotConfigured(f"{self.label} webhooks are not configured ({self.webhook_secret_setting})")
        return self._webhook_secret


def subscription_path(subscription_id: str) -> str:
    return f"/v1/subscriptions/{quote(subscription_id, safe='')}"


def configured_checkout_providers(settings: Settings) -> list[str]:
    return [
        name for name, key in (("polar", settings.polar_access_token), ("stripe", settings.stripe_secret_key)) if key
    ]


def state_of(status: str) -> Literal["active", "past_due", "ended"] | None:
    if status in ACTIVE_STATUSES:
        return "active"
    if status in GRACE_STATUSES:
        return "past_due"
    if status in ENDED_STATUSES:
        return "ended"
    return None  # incomplete, paused...: nothing to change yet


async def call_api(
    method: str, url: str, *, what: str, http: httpx.AsyncClient | None = None, **kwargs: Any
) -> dict[str, Any]:
    """One JSON API call (on `http`, the pooled client, when given); every failure becomes a PaymentProviderError
    (never an unexpected 500)."""
    try:
        if http is not None:
            response = await http.request(method, url, timeout=HTTP_TIMEOUT, **kwargs)
        else:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
                response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise PaymentProviderError(f"{what} unreachable ({type(exc).__name__})") from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 400:
        raise PaymentProviderError(
            f"{what} answered HTTP {response.status_code}: {_detail(body)}", response.status_code
        )
    if not isinstance(body, dict):
        raise PaymentProviderError(f"{what} answered with a non-object body", response.status_code)
    return body


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error") or body.get("detail") or body
        if isinstance(error, dict):
            return str(error.get("message") or error.get("type") or error)[:300]
        return str(error)[:300]
    return "no JSON body"


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 strings (Polar) or Unix seconds (Stripe); anything else is None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 10**11:
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def json_object(body: bytes) -> dict[str, Any]:
    """A verified webhook body; anything but a JSON object is malformed."""
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise SignatureError("Webhook body is not JSON", malformed=True) from None
    if not isinstance(payload, dict):
        raise SignatureError("Webhook body is not a JSON object", malformed=True)
    return payload
