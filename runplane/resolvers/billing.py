"""Billing: plans, each user's subscription and billing period, the token ledger and quota, checkout and
plan changes. Payment providers are reached through runplane/billing/providers.py.

Token quota: `tokens_used` on the subscription is the running sum of the period's platform ledger entries.
Every run billed to the platform (not to the user's own key) holds a reservation while it is in flight
(queued, running or paused): `billing_run_reservation` tokens, capped at what is left. A run may start only
while the allowance minus `tokens_used` minus the in-flight reservations is above zero; the check and the
insert of the run happen in one transaction holding the lock on the user's subscription row
(`reserve_run_tokens`), so concurrent starts are serialized per user and see each other's runs. As the run
ends it is settled: its actual tokens are charged once (the ledger's run_id is unique, so a retried or
concurrent write of the same run charges nothing) and, when it leaves the active statuses, its reservation
is gone (it is derived from the active runs, never stored, so nothing can leak). Consequences:
- once fewer tokens than one reservation are left, at most one platform run is in flight: concurrent starts
  get QuotaExceeded (402), and the allowance is overshot by at most that one run's usage beyond what was left;
- with room for several reservations, each in-flight run may overshoot only by its usage beyond its own
  reservation (runs are not cut off mid-way: the executor does not meter tokens against the reservation).

Plan limits (projects, deployed projects): `create_within_limit` counts and inserts in one transaction under
the same lock, so concurrent creates at the cap cannot both succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

from tortoise.transactions import in_transaction

from runplane.auth.abilities import BILLING_READ, BILLING_WRITE
from runplane.billing.gateways import payment_gateway
from runplane.billing.ledger import plans_of, subscription_for
from runplane.billing.model_keys import has_key, is_scripted
from runplane.billing.plans import PROVIDERS, Plan
from runplane.billing.providers import (
    CheckoutRequest,
    PaymentGateway,
    PaymentProviderError,
    ProviderNotConfigured,
    configured_checkout_providers,
)
from runplane.clock import iso, now
from runplane.config import Settings
from runplane.errors import Conflict, InvalidInput, QuotaExceeded, ServiceUnavailable
from runplane.models import AgentRun, BillingSubscription, CheckoutSession, Project, UsageEntry, User
from runplane.models.agent_run import ACTIVE_STATUSES
from runplane.models.deployment import Deployment
from runplane.resolvers import rate_limits
from runplane.resolvers.context import RequestContext
from runplane.resolvers.validation import clean_text

MAX_URL = 2048
MAX_HISTORY_DAYS = 366
DEFAULT_HISTORY_DAYS = 30
CHECKOUTS_PER_MINUTE = 10
T = TypeVar("T")


async def get_subscription(ctx: RequestContext) -> tuple[BillingSubscription, Plan]:
    user_id = ctx.require(BILLING_READ)
    sub = await subscription_for(ctx.settings, user_id)
    return sub, plans_of(ctx.settings).effective(sub.plan)


def list_plans(ctx: RequestContext) -> list[Plan]:
    ctx.require(BILLING_READ)
    return plans_of(ctx.settings).all()


# ---- status and quota ----------------------------------------------------------------------------


@dataclass
class BillingStatus:
    subscription: BillingSubscription
    plan: Plan
    has_own_key: bool
    projects_used: int
    deployments_used: int = 0  # projects with a deployment (the plan's max_deployments counts those)

    @property
    def tokens_used(self) -> int:
        return int(self.subscription.tokens_used)

    @property
    def tokens_limit(self) -> int | None:
        return self.plan.token_allowance

    @property
    def tokens_remaining(self) -> int | None:
        return None if self.tokens_limit is None else max(0, self.tokens_limit - self.tokens_used)

    @property
    def quota_exhausted(self) -> bool:
        return self.tokens_limit is not None and self.tokens_used >= self.tokens_limit

    @property
    def can_run(self) -> bool:
        """Whether a run on a platform model may start (with an own key, non-scripted models always may)."""
        return not self.quota_exhausted or self.has_own_key


async def status_for(settings: Settings, user_id: uuid.UUID) -> BillingStatus:
    sub = await subscription_for(settings, user_id)
    return BillingStatus(
        sub,
        plans_of(settings).effective(sub.plan),
        await has_key(user_id),
        await Project.filter(owner_id=user_id).count(),
        await deployed_projects(user_id),
    )


async def deployed_projects(user_id: uuid.UUID) -> int:
    return len(await Deployment.filter(owner_id=user_id).distinct().values_list("project_id", flat=True))


async def billing_status(ctx: RequestContext) -> BillingStatus:
    return await status_for(ctx.settings, ctx.require(BILLING_READ))


async def _locked_subscription(settings: Settings, user_id: uuid.UUID) -> tuple[BillingSubscription, Plan]:
    """Inside a transaction: the user's subscription row, locked until the transaction ends (SELECT ... FOR
    UPDATE on PostgreSQL; SQLite runs one writing transaction at a time). The row must exist already: creating
    it here could fail on a concurrent first use, and a failed statement aborts a PostgreSQL transaction."""
    sub = await BillingSubscription.select_for_update().get(user_id=user_id)
    return sub, plans_of(settings).effective(sub.plan)


@dataclass(frozen=True)
class RunPayer:
    """Who pays for a run about to start, worked out before its transaction."""

    user_id: uuid.UUID
    has_key: bool  # the user stored their own model key
    own_key: bool  # this run uses it: the platform allowance is not spent


async def run_payer(ctx: RequestContext, *, model: str) -> RunPayer:
    """Before the run's transaction: the subscription exists and is in its current period."""
    user_id = ctx.user_id
    await subscription_for(ctx.settings, user_id)
    stored = await has_key(user_id)
    return RunPayer(user_id, stored, not is_scripted(model) and stored)


async def reserve_run_tokens(ctx: RequestContext, payer: RunPayer) -> None:
    """Inside the transaction that inserts the run, before the insert: QuotaExceeded (402) unless tokens are
    left beyond the reservations of the user's platform runs in flight (semantics in the module docstring)."""
    if payer.own_key:
        return
    sub, plan = await _locked_subscription(ctx.settings, payer.user_id)
    if plan.token_allowance is None:
        return
    in_flight = AgentRun.filter(owner_id=payer.user_id, status__in=ACTIVE_STATUSES)
    if payer.has_key:  # the user's runs on non-scripted models are paid with their key
        in_flight = in_flight.filter(model__startswith="scripted/")
    runs = await in_flight.count()
    reserved = runs * max(0, ctx.settings.billing_run_reservation)
    if plan.token_allowance - int(sub.tokens_used) - reserved > 0:
        return
    raise _tokens_exceeded(plan, sub, runs, reserved)


def _tokens_exceeded(plan: Plan, sub: BillingSubscription, runs: int, reserved: int) -> QuotaExceeded:
    allowance, used = plan.token_allowance or 0, int(sub.tokens_used)
    renews = f"the period renews at {iso(sub.current_period_end)}"
    if used >= allowance:
        message = (
            f"The {plan.name} plan's {allowance} tokens for this period are used up: upgrade the plan "
            f"or add your own OpenRouter key ({renews})"
        )
    else:
        message = (
            f"The {allowance - used} tokens left on the {plan.name} plan are reserved by {runs} run(s) in "
            f"progress: wait for them to finish, or upgrade the plan ({renews})"
        )
    return QuotaExceeded(
        message,
        plan=plan.id,
        limit="tokens",
        used=used,
        allowed=allowance,
        tokens_used=used,
        tokens_limit=allowance,
        tokens_reserved=reserved,
        runs_in_flight=runs,
        period_end=sub.current_period_end,
    )


def _cap(plan: Plan, limit: str) -> int | None:
    return {"projects": plan.max_projects, "deployments": plan.max_deployments}[limit]


def _limit_exceeded(plan: Plan, limit: str, used: int, cap: int) -> QuotaExceeded:
    return QuotaExceeded(
        f"The {plan.name} plan allows {cap} {limit}: upgrade the plan to create more",
        plan=plan.id,
        limit=limit,
        used=used,
        allowed=cap,
    )


async def enforce_limit(ctx: RequestContext, *, limit: str, used: int) -> None:
    """A quick check without the lock (to fail before costly work): QuotaExceeded at the plan's cap.
    What decides is `create_within_limit`."""
    sub = await subscription_for(ctx.settings, ctx.user_id)
    plan = plans_of(ctx.settings).effective(sub.plan)
    cap = _cap(plan, limit)
    if cap is not None and used >= cap:
        raise _limit_exceeded(plan, limit, used, cap)


async def create_within_limit(
    ctx: RequestContext, *, limit: str, count: Callable[[], Awaitable[int]], create: Callable[[], Awaitable[T]]
) -> T:
    """Create a limited thing (limit: "projects" | "deployments"): in one transaction, lock the caller's
    subscription row, count what they have (`count`), refuse at the plan's cap (QuotaExceeded, 402, with
    limit, used, allowed and plan), else `create`. Concurrent creates of one user are serialized by the lock."""
    await subscription_for(ctx.settings, ctx.user_id)  # exists (and is in its period) before the lock
    async with in_transaction():
        _, plan = await _locked_subscription(ctx.settings, ctx.user_id)
        cap = _cap(plan, limit)
        if cap is not None and (used := await count()) >= cap:
            raise _limit_exceeded(plan, limit, used, cap)
        return await create()


# ---- usage history -------------------------------------------------------------------------------


@dataclass
class UsageDay:
    day: date
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    platform_tokens: int = 0
    runs: int = 0

    def add(self, prompt: int, completion: int, total: int, source: str) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.total_tokens += total
        self.platform_tokens += total if source == "platform" else 0
        self.runs += 1


@dataclass
class UsageHistory:
    start: date
    end: date
    days: list[UsageDay]

    @property
    def totals(self) -> UsageDay:
        total = UsageDay(self.start)
        for day in self.days:
            total.prompt_tokens += day.prompt_tokens
            total.completion_tokens += day.completion_tokens
            total.total_tokens += day.total_tokens
            total.platform_tokens += day.platform_tokens
            total.runs += day.runs
        return total


async def usage_history(
    ctx: RequestContext,
    *,
    start_date: date | str | None = None,
    end_date: date | str | None = None,
    days: int | None = None,
) -> UsageHistory:
    """The caller's ledger summed per UTC day, every day of [start_date, end_date] (default: the last 30), or of
    the last `days` days (Cheatcode's `?days=`)."""
    user_id = ctx.require(BILLING_READ)
    first = now().date() - timedelta(days=days - 1) if days is not None else _clean_date(start_date, "start_date")
    start, end = _date_range(first, _clean_date(end_date, "end_date"))
    per_day = {start + timedelta(days=i): UsageDay(start + timedelta(days=i)) for i in range((end - start).days + 1)}
    rows = await UsageEntry.filter(
        user_id=user_id, created_at__gte=_midnight(start), created_at__lt=_midnight(end + timedelta(days=1))
    ).values_list("created_at", "prompt_tokens", "completion_tokens", "total_tokens", "source")
    for created_at, prompt, completion, total, source in rows:
        per_day[created_at.astimezone(UTC).date()].add(prompt, completion, total, source)
    return UsageHistory(start, end, list(per_day.values()))


@dataclass(frozen=True)
class UsageLine:
    """One run's usage, with the thread and project it ran in (None once the run was deleted)."""

    entry: UsageEntry
    thread_id: uuid.UUID | None
    project_id: uuid.UUID | None


async def usage_lines(ctx: RequestContext, history: UsageHistory, *, limit: int = 1000) -> list[UsageLine]:
    """The runs behind a usage history, newest first: two queries, runs re-checked against the caller."""
    user_id = ctx.require(BILLING_READ)
    entries = (
        await UsageEntry.filter(
            user_id=user_id,
            created_at__gte=_midnight(history.start),
            created_at__lt=_midnight(history.end + timedelta(days=1)),
        )
        .order_by("-created_at")
        .limit(limit)
    )
    runs = {
        run_id: (thread_id, project_id)
        for run_id, thread_id, project_id in await AgentRun.filter(
            id__in=[e.run_id for e in entries], owner_id=user_id
        ).values_list("id", "thread_id", "project_id")
    }
    return [UsageLine(e, *runs.get(e.run_id, (None, None))) for e in entries]


def _clean_date(value: object, field: str) -> date | None:
    """A GraphQL Date as it is; a REST query's YYYY-MM-DD (or an ISO timestamp's day) parsed."""
    if isinstance(value, date):
        return value
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise InvalidInput(f"{field} must be a date (YYYY-MM-DD)", field=field)
    try:
        return (
            date.fromisoformat(value)
            if len(value) == 10
            else datetime.fromisoformat(value.replace("Z", "+00:00")).date()
        )
    except ValueError:
        raise InvalidInput(f"{field} must be a date (YYYY-MM-DD)", field=field) from None


def _date_range(start: date | None, end: date | None) -> tuple[date, date]:
    today = now().date()
    end = end or (max(start, today) if start else today)
    start = start or end - timedelta(days=DEFAULT_HISTORY_DAYS - 1)
    if start > end:
        raise InvalidInput("start_date must not be after end_date", field="start_date")
    if (end - start).days + 1 > MAX_HISTORY_DAYS:
        raise InvalidInput(f"The range may cover at most {MAX_HISTORY_DAYS} days", field="end_date")
    return start, end


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# ---- checkout and plan changes -------------------------------------------------------------------


def _clean_plan(ctx: RequestContext, plan: object) -> Plan:
    plan_id = clean_text(plan, "plan", max_length=64)
    found = plans_of(ctx.settings).get(plan_id)
    if found is None:
        raise InvalidInput(f"Unknown plan '{plan_id}'", field="plan")
    return found


def _clean_url(value: object, field: str, default: str | None) -> str | None:
    if value is None or value == "":
        return default
    url = clean_text(value, field, max_length=MAX_URL)
    if not url.lower().startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise InvalidInput(f"{field} must be an http(s) URL", field=field)
    return url


def _clean_provider(ctx: RequestContext, provider: object) -> str:
    if provider is not None and provider != "":
        name = clean_text(provider, "provider", max_length=16).lower()
        if name not in PROVIDERS:
            raise InvalidInput(f"provider must be one of {', '.join(PROVIDERS)}", field="provider")
        return name
    configured = configured_checkout_providers(ctx.settings)
    chosen = ctx.settings.billing_provider or (configured[0] if configured else None)
    if chosen is None:
        raise ServiceUnavailable("Payments are not configured on this server")
    return chosen


def _gateway(ctx: RequestContext, name: str) -> PaymentGateway:
    return payment_gateway(ctx.settings, name, ctx.services.http(name))


async def create_checkout_session(
    ctx: RequestContext,
    *,
    plan: str,
    provider: str | None = None,
    success_url: str | None = None,
    cancel_url: str | None = None,
) -> CheckoutSession:
    """A hosted checkout for a paid plan; the provider's webhook activates the plan once paid."""
    user_id = ctx.require(BILLING_WRITE)
    target = _clean_plan(ctx, plan)
    if not target.is_paid:
        raise InvalidInput(f"The {target.name} plan needs no checkout", field="plan")
    name = _clean_provider(ctx, provider)
    price_id = target.checkout_id(name)
    if price_id is None:
        raise InvalidInput(f"The {target.name} plan cannot be bought through {name}", field="plan")
    success = _clean_url(success_url, "success_url", ctx.settings.billing_success_url)
    if success is None:
        raise InvalidInput("success_url is required", field="success_url")
    cancel = _clean_url(cancel_url, "cancel_url", ctx.settings.billing_cancel_url)
    sub = await subscription_for(ctx.settings, user_id)
    if sub.external_id:  # a second checkout would start a second, parallel subscription
        raise Conflict("A subscription is already active: change it with upgrade-plan", current_plan=sub.plan)
    await rate_limits.hit(ctx, "checkout sessions", CHECKOUTS_PER_MINUTE)
    user = await User.get(id=user_id)
    request = CheckoutRequest(target.id, price_id, str(user_id), user.email, success, cancel)
    checkout = await _provider_call(name, _gateway(ctx, name).create_checkout(request))
    return await CheckoutSession.create(
        user_id=user_id,
        provider=name,
        external_id=checkout.id[:200],
        plan=target.id,
        url=checkout.url,
        expires_at=checkout.expires_at,
    )


async def _provider_call(name: str, call: Awaitable[T]) -> T:
    try:
        return await call
    except ProviderNotConfigured as exc:
        raise ServiceUnavailable(str(exc), provider=name) from None
    except PaymentProviderError as exc:
        raise ServiceUnavailable(f"Payment provider error: {exc.message}", provider=name) from None


@dataclass
class UpgradeOutcome:
    status: str  # updated | checkout_required | cancel_scheduled | cancel_reverted
    subscription: BillingSubscription
    plan: Plan
    checkout: CheckoutSession | None = None


async def upgrade_plan(
    ctx: RequestContext,
    *,
    plan: str,
    provider: str | None = None,
    success_url: str | None = None,
    cancel_url: str | None = None,
) -> UpgradeOutcome:
    """Change plan. A provider-managed subscription is changed (or cancelled at period end) with the provider;
    otherwise a paid plan needs a checkout first, and the default plan applies at once."""
    user_id = ctx.require(BILLING_WRITE)
    target = _clean_plan(ctx, plan)
    sub = await subscription_for(ctx.settings, user_id)
    if sub.plan == target.id and not sub.cancel_at_period_end:
        raise Conflict(f"Already on the {target.name} plan", current_plan=sub.plan)
    if sub.external_id and sub.provider:
        return await _change_with_provider(ctx, sub, target)
    if target.is_paid:
        checkout = await create_checkout_session(
            ctx, plan=target.id, provider=provider, success_url=success_url, cancel_url=cancel_url
        )
        return UpgradeOutcome("checkout_required", sub, plans_of(ctx.settings).effective(sub.plan), checkout)
    await BillingSubscription.filter(id=sub.id).update(plan=target.id, status="active", cancel_at_period_end=False)
    await sub.refresh_from_db()
    return UpgradeOutcome("updated", sub, target)


async def _change_with_provider(ctx: RequestContext, sub: BillingSubscription, target: Plan) -> UpgradeOutcome:
    assert sub.provider is not None and sub.external_id is not None
    gateway = _gateway(ctx, sub.provider)
    current = plans_of(ctx.settings).effective(sub.plan)
    if target.id == sub.plan:  # undo a scheduled cancellation
        await _provider_call(sub.provider, gateway.set_cancel_at_period_end(sub.external_id, False))
        await BillingSubscription.filter(id=sub.id).update(cancel_at_period_end=False)
        status = "cancel_reverted"
    elif not target.is_paid:
        await _provider_call(sub.provider, gateway.set_cancel_at_period_end(sub.external_id, True))
        await BillingSubscription.filter(id=sub.id).update(cancel_at_period_end=True)
        status, target = "cancel_scheduled", current
    else:
        price_id = target.checkout_id(sub.provider)
        if price_id is None:
            raise InvalidInput(f"The {target.name} plan cannot be bought through {sub.provider}", field="plan")
        await _provider_call(sub.provider, gateway.change_plan(sub.external_id, price_id))
        await BillingSubscription.filter(id=sub.id).update(plan=target.id, cancel_at_period_end=False)
        status = "updated"
    await sub.refresh_from_db()
    return UpgradeOutcome(status, sub, target)
