"""Each user's subscription period and the token ledger: the billing rules the run engine needs as a run ends
(agents/lifecycle.py charges it) and the operations need for quota and history (resolvers/billing.py).

A run's tokens are charged once: the ledger's run_id is unique, so a retried or concurrent charge of the same
run writes nothing. Tokens paid with the user's own key (BYOK) are recorded but do not spend the allowance."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Protocol

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from runplane.billing.model_keys import has_key, is_scripted
from runplane.billing.plans import PlanBook, plan_book
from runplane.clock import now
from runplane.config import Settings
from runplane.models import AgentRun, BillingSubscription, UsageEntry

MAX_TOKENS_PER_ENTRY = 2**31 - 1
TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


class TokenCounts(Protocol):
    """What a provider reports (agents/providers/base.py `Usage`), without billing importing the agents."""

    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def total_tokens(self) -> int: ...


def plans_of(settings: Settings) -> PlanBook:
    return plan_book(settings)


async def subscription_for(settings: Settings, user_id: uuid.UUID) -> BillingSubscription:
    """The user's subscription (the default plan on first use), rolled into the current period."""
    sub = await BillingSubscription.get_or_none(user_id=user_id)
    if sub is None:
        sub = await _create_default(settings, user_id)
    if sub.current_period_end <= now():
        sub = await _roll_over(settings, sub)
    return sub


async def _create_default(settings: Settings, user_id: uuid.UUID) -> BillingSubscription:
    start = now()
    try:
        return await BillingSubscription.create(
            user_id=user_id,
            plan=plans_of(settings).default.id,
            current_period_start=start,
            current_period_end=start + timedelta(days=settings.billing_period_days),
        )
    except IntegrityError:  # a concurrent first request created it
        return await BillingSubscription.get(user_id=user_id)


async def _roll_over(settings: Settings, sub: BillingSubscription) -> BillingSubscription:
    """A new period starts where the old one ended; its allowance is fresh. A subscription set to cancel
    at the period's end falls back to the default plan. Conditional on the old period end, so two
    requests rolling over at once do it once."""
    period = timedelta(days=settings.billing_period_days)
    elapsed = (now() - sub.current_period_end) // period
    start = sub.current_period_end + elapsed * period
    updates: dict[str, object] = dict(current_period_start=start, current_period_end=start + period, tokens_used=0)
    if sub.cancel_at_period_end:
        updates.update(
            plan=plans_of(settings).default.id,
            status="active",
            provider=None,
            external_id=None,
            cancel_at_period_end=False,
        )
    await BillingSubscription.filter(id=sub.id, current_period_end=sub.current_period_end).update(**updates)
    await sub.refresh_from_db()
    return sub


async def charge_run(settings: Settings, run_id: uuid.UUID, **fields: Any) -> bool:
    """Called as a run finishes with the token counts it used (if any): charge them to its owner."""
    tokens = [int(fields.get(name) or 0) for name in TOKEN_FIELDS]
    if tokens[2] <= 0:
        return False
    run = await AgentRun.get_or_none(id=run_id).only("id", "owner_id", "model")
    return run is not None and await _record(settings, run, tokens)


async def record_run_usage(settings: Settings, *, run: AgentRun, usage: TokenCounts) -> bool:
    """Charge a finished run's tokens once. False when this run was already charged."""
    return await _record(settings, run, [usage.prompt_tokens, usage.completion_tokens, usage.total_tokens])


async def _record(settings: Settings, run: AgentRun, counts: list[int]) -> bool:
    user_id: uuid.UUID = run.owner_id
    own_key = not is_scripted(run.model) and await has_key(user_id)
    await subscription_for(settings, user_id)  # exists, and in its current period
    tokens = [min(max(0, int(n)), MAX_TOKENS_PER_ENTRY) for n in counts]
    try:
        async with in_transaction():
            await UsageEntry.create(
                user_id=user_id,
                run_id=run.id,
                model=run.model[:200],
                source="byok" if own_key else "platform",
                prompt_tokens=tokens[0],
                completion_tokens=tokens[1],
                total_tokens=tokens[2],
            )
            if not own_key and tokens[2]:
                await BillingSubscription.filter(user_id=user_id).update(tokens_used=F("tokens_used") + tokens[2])
    except IntegrityError:
        return False
    return True
