"""Payment-provider webhooks: verified by signature within a replay window, then applied at most once per
event id (the processed-event row and the subscription change commit together)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from runplane.billing.gateways import payment_gateway
from runplane.billing.ledger import plans_of, subscription_for
from runplane.billing.plans import PROVIDERS
from runplane.billing.providers import ProviderNotConfigured, SubscriptionChange, WebhookEvent
from runplane.billing.signatures import SignatureError
from runplane.clock import now
from runplane.config import Settings
from runplane.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from runplane.models import BillingSubscription, ProcessedWebhook, User
from runplane.resolvers.context import RequestContext


@dataclass
class WebhookOutcome:
    provider: str
    event_id: str
    event_type: str
    status: str  # processed | duplicate | ignored | stale


async def process_webhook(
    ctx: RequestContext, *, provider: str, headers: Mapping[str, str], body: bytes
) -> WebhookOutcome:
    if provider not in PROVIDERS:
        raise NotFound("Unknown webhook provider")
    gateway = payment_gateway(ctx.settings, provider)  # verifying a webhook makes no HTTP call
    try:
        event = gateway.verify_webhook(headers, body, now=time.time())
    except ProviderNotConfigured as exc:
        raise ServiceUnavailable(str(exc)) from None
    except SignatureError as exc:
        raise (BadRequest if exc.malformed else Forbidden)(exc.message) from None
    if await ProcessedWebhook.exists(provider=provider, event_id=event.id):
        return WebhookOutcome(provider, event.id, event.type, "duplicate")
    change = gateway.subscription_change(event, plans_of(ctx.settings))
    target = await _target(ctx.settings, provider, change) if change else None
    try:
        async with in_transaction():
            status = await _apply(ctx.settings, target, change, event, provider) if target and change else "ignored"
            await ProcessedWebhook.create(
                provider=provider, event_id=event.id, event_type=event.type[:100], outcome=status
            )
    except IntegrityError:  # the same event, delivered twice at once: the other delivery applied it
        return WebhookOutcome(provider, event.id, event.type, "duplicate")
    return WebhookOutcome(provider, event.id, event.type, status)


async def _target(settings: Settings, provider: str, change: SubscriptionChange) -> BillingSubscription | None:
    """The subscription the event is about: our user id from the checkout metadata, else the provider's subscription
    id."""
    user_id = _uuid(change.user_ref)
    if user_id is not None and await User.exists(id=user_id):
        return await subscription_for(settings, user_id)
    if change.subscription_id:
        return await BillingSubscription.get_or_none(provider=provider, external_id=change.subscription_id)
    return None


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


async def _apply(
    settings: Settings, target: BillingSubscription, change: SubscriptionChange, event: WebhookEvent, provider: str
) -> str:
    sub = await BillingSubscription.select_for_update().get(id=target.id)
    if event.occurred_at and sub.last_event_at and event.occurred_at < sub.last_event_at:
        return "stale"  # an older event delivered late: a newer one already said how things are
    updates = _ended(settings, sub, change) if change.state == "ended" else _active(settings, sub, change, provider)
    if updates is None:
        return "ignored"
    if event.occurred_at:
        updates["last_event_at"] = event.occurred_at
    await BillingSubscription.filter(id=sub.id).update(**updates)
    return "processed"


def _ended(settings: Settings, sub: BillingSubscription, change: SubscriptionChange) -> dict[str, Any] | None:
    if sub.external_id and change.subscription_id and change.subscription_id != sub.external_id:
        return None  # an earlier subscription ended after the user moved to another one
    # Back to the default plan; the period and what it used stay (a downgrade grants no fresh allowance).
    return dict(
        plan=plans_of(settings).default.id, status="active", provider=None, external_id=None, cancel_at_period_end=False
    )


def _active(
    settings: Settings, sub: BillingSubscription, change: SubscriptionChange, provider: str
) -> dict[str, Any] | None:
    plan = plans_of(settings).get(change.plan_id) if change.plan_id else None
    if plan is None and change.subscription_id and change.subscription_id == sub.external_id:
        plan = plans_of(settings).get(sub.plan)
    if plan is None:
        return None  # a product we do not sell as a plan
    updates: dict[str, Any] = dict(
        plan=plan.id,
        status=change.status,
        provider=provider,
        external_id=change.subscription_id or sub.external_id,
        customer_id=change.customer_id or sub.customer_id,
        cancel_at_period_end=change.cancel_at_period_end,
    )
    start = change.period_start or (now() if plan.id != sub.plan else None)
    if start is not None:
        end = change.period_end or start + timedelta(days=settings.billing_period_days)
        updates.update(current_period_start=start, current_period_end=end)
        if start > sub.current_period_start:
            updates["tokens_used"] = 0  # a new paid period begins with its full allowance
    return updates
