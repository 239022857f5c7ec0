"""Billing administration (X-API-Key or an admin token): quotas across users, and the model catalogue cache."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from tortoise.functions import Count

from runplane.agents.catalog import configured_providers
from runplane.agents.providers.registry import default_model_cache
from runplane.billing.ledger import plans_of
from runplane.billing.plans import Plan
from runplane.clock import now
from runplane.errors import InvalidInput, NotFound
from runplane.models import BillingSubscription, User
from runplane.resolvers.billing import BillingStatus, status_for
from runplane.resolvers.context import RequestContext
from runplane.resolvers.validation import RawId, clean_limit, parse_uuid

QUOTA_TOP, MAX_QUOTA_TOP = 50, 200  # the heaviest users a quota report lists, by default and at most


async def _existing_user(user_id: RawId) -> uuid.UUID:
    uid = parse_uuid(user_id, "User")
    if not await User.exists(id=uid):
        raise NotFound("User not found")
    return uid


async def reset_quotas(ctx: RequestContext, *, user_id: RawId | None = None, all_users: bool = False) -> int:
    """Give one user (or, explicitly, everyone) the full allowance of the current period again.
    The ledger keeps every entry: only the period's running sum starts over."""
    ctx.require_admin()
    if all_users is not True and all_users is not False:
        raise InvalidInput("all must be a boolean", field="all")
    if user_id is None or user_id == "":
        if all_users is not True:
            raise InvalidInput("Give user_id, or all: true to reset every user", field="user_id")
        return await BillingSubscription.all().update(tokens_used=0)
    if all_users:
        raise InvalidInput("Give either user_id or all, not both", field="all")
    uid = await _existing_user(user_id)
    return await BillingSubscription.filter(user_id=uid).update(tokens_used=0)


@dataclass
class QuotaRow:
    subscription: BillingSubscription
    plan: Plan

    @property
    def tokens_used(self) -> int:
        # A period that ended is not rolled over by reading it here: it simply counts as unused.
        return int(self.subscription.tokens_used) if self.subscription.current_period_end > now() else 0

    @property
    def exhausted(self) -> bool:
        return self.plan.token_allowance is not None and self.tokens_used >= self.plan.token_allowance


@dataclass
class QuotaReport:
    users: int
    exhausted: int
    by_plan: dict[str, int]
    top: list[QuotaRow]


async def quota_status(ctx: RequestContext, *, first: int | None = None) -> QuotaReport:
    """Totals per plan, how many users have spent their allowance, and the heaviest users of the period."""
    ctx.require_admin()
    limit = clean_limit(first, default=QUOTA_TOP, maximum=MAX_QUOTA_TOP)
    book = plans_of(ctx.settings)
    current = BillingSubscription.filter(current_period_end__gt=now())
    exhausted = 0
    for plan in book.all():
        if plan.token_allowance is not None:
            exhausted += await current.filter(plan=plan.id, tokens_used__gte=plan.token_allowance).count()
    rows = await current.order_by("-tokens_used", "id").limit(limit)
    grouped = await BillingSubscription.annotate(count=Count("id")).group_by("plan").values("plan", "count")
    by_plan = {str(row["plan"]): int(row["count"]) for row in grouped}
    return QuotaReport(sum(by_plan.values()), exhausted, by_plan, [QuotaRow(r, book.effective(r.plan)) for r in rows])


async def user_quota_status(ctx: RequestContext, *, user_id: RawId) -> BillingStatus:
    ctx.require_admin()
    return await status_for(ctx.settings, await _existing_user(user_id))


def model_cache_info(ctx: RequestContext) -> dict[str, Any]:
    ctx.require_admin()
    return {**default_model_cache.info(), "providers": sorted(configured_providers(ctx.services))}


async def warm_model_cache(ctx: RequestContext) -> dict[str, Any]:
    ctx.require_admin()
    providers = configured_providers(ctx.services)
    return {**await default_model_cache.warm(providers), "providers": sorted(providers)}


def clear_model_cache(ctx: RequestContext) -> int:
    ctx.require_admin()
    return default_model_cache.clear()
