"""Billing routes of Cheatcode's documented API (README "REST compatibility API"): status, plans, usage, checkout,
BYOK keys, payment methods, admin."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runplane.billing.payment_methods import CountryMethods
from runplane.billing.plans import Plan
from runplane.clock import iso
from runplane.models import BillingSubscription, CheckoutSession, UserModelKey
from runplane.models.choices import KeyTestStatus
from runplane.resolvers import billing as ops
from runplane.resolvers import billing_admin as admin_ops
from runplane.resolvers import byok as key_ops
from runplane.resolvers import payment_methods as pm_ops
from runplane.resolvers.billing import BillingStatus, UsageDay, UsageHistory, UsageLine
from runplane.resolvers.billing_admin import QuotaReport
from runplane.resolvers.byok import KeyTestResult
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.billing_requests import (
    AccountQuery,
    CheckoutCreate,
    KeyStore,
    KeyTest,
    MethodValidation,
    QuotaQuery,
    QuotaReset,
    UsageQuery,
)
from runplane.rest_compat.bodies import parse_body, parse_query
from runplane.rest_compat.common import ok
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import BOOL, INT, NULLABLE_STR, STR, TIME, obj

TAG, ADMIN_TAG = "billing", "billing-admin"
NULLABLE_INT: dict[str, Any] = {"type": ["integer", "null"]}
LIMITS = obj(["projects", "deployments"], projects=NULLABLE_INT, deployments=NULLABLE_INT)
PLAN = obj(
    ["id", "name", "price_cents", "currency", "token_allowance", "limits"],
    id=STR,
    name=STR,
    price_cents=INT,
    currency=STR,
    interval=STR,
    token_allowance=NULLABLE_INT,
    limits=LIMITS,
    byok=BOOL,
    features={"type": "array", "items": STR},
    purchasable=BOOL,
    providers={"type": "array", "items": STR},
)
PLAN_LIST = obj(["plans", "current_plan"], plans={"type": "array", "items": PLAN}, current_plan=STR)
SUBSCRIPTION = obj(
    ["plan", "status", "current_period_start", "current_period_end"],
    plan=STR,
    plan_name=STR,
    status=STR,
    provider=NULLABLE_STR,
    subscription_id=NULLABLE_STR,
    current_period_start=TIME,
    current_period_end=TIME,
    cancel_at_period_end=BOOL,
    plan_details=PLAN,
)
STATUS = obj(
    ["plan", "status", "can_run", "tokens_used", "tokens_limit", "tokens_remaining"],
    plan=STR,
    plan_name=STR,
    status=STR,
    can_run=BOOL,
    quota_exhausted=BOOL,
    tokens_used=INT,
    tokens_limit=NULLABLE_INT,
    tokens_remaining=NULLABLE_INT,
    period_start=TIME,
    period_end=TIME,
    byok_key_configured=BOOL,
    limits=LIMITS,
    projects_used=INT,
)
USAGE_DAY = obj(
    ["date", "total_tokens", "runs"],
    date={"type": "string", "format": "date"},
    prompt_tokens=INT,
    completion_tokens=INT,
    total_tokens=INT,
    platform_tokens=INT,
    runs=INT,
)
# The whole range's sums: a day row whose `date` is null (as in GraphQL's UsageHistory.totals).
USAGE_TOTALS = {**USAGE_DAY, "properties": {**USAGE_DAY["properties"], "date": {"type": "null"}}}
USAGE_HISTORY = obj(
    ["start_date", "end_date", "days", "totals"],
    start_date=STR,
    end_date=STR,
    days={"type": "array", "items": USAGE_DAY},
    totals=USAGE_TOTALS,
)
# Already subscribed or on that plan (409); payments not configured or the provider failing (503).
PAYMENT_ERRORS = (409, 503)
CHECKOUT = obj(
    ["checkout_id", "url", "provider", "plan"],
    checkout_id=STR,
    session_id=STR,
    url=STR,
    checkout_url=STR,
    provider=STR,
    plan=STR,
    expires_at={"type": ["string", "null"]},
)
UPGRADE = obj(
    ["status", "subscription"],
    status={"type": "string", "enum": ["updated", "checkout_required", "cancel_scheduled", "cancel_reverted"]},
    subscription=SUBSCRIPTION,
    checkout={"oneOf": [CHECKOUT, {"type": "null"}]},
)
KEY_STATUS = obj(
    ["configured"],
    configured=BOOL,
    provider=STR,
    hint=NULLABLE_STR,
    created_at={"type": ["string", "null"]},
    last_tested_at={"type": ["string", "null"]},
    last_test_status=NULLABLE_STR,
)
KEY_TEST = obj(
    ["valid", "status", "source"],
    valid=BOOL,
    status=STR,
    source=STR,
    label=NULLABLE_STR,
    usage={"type": ["number", "null"]},
    limit={"type": ["number", "null"]},
)
COUNTRY_METHODS = obj(
    ["country_code", "currency", "methods", "fallback"],
    country_code=NULLABLE_STR,
    country_name=NULLABLE_STR,
    region=NULLABLE_STR,
    currency=STR,
    methods={"type": "array", "items": {"type": "object"}},
    fallback=BOOL,
)
VALIDATION = obj(
    ["valid", "country_code", "payment_method", "currency"],
    valid=BOOL,
    country_code=STR,
    payment_method=STR,
    currency=STR,
    reason=NULLABLE_STR,
)


# Cheatcode shows "credits", not tokens: one credit is this many tokens (the original's display unit).
TOKENS_PER_CREDIT = 1000


def credits(tokens: int | None) -> int | None:
    return None if tokens is None else tokens // TOKENS_PER_CREDIT


def _prices(plan: Plan) -> dict[str, float]:
    """`price_usd` / `price_inr` as the web app reads them: the plan's price in its own currency, 0 in the other."""
    price = plan.price_cents / 100
    return {"price_usd": price if plan.currency == "usd" else 0, "price_inr": price if plan.currency == "inr" else 0}


def plan_json(plan: Plan) -> dict[str, Any]:
    return {
        **_original_plan_fields(plan),
        "id": plan.id,
        "name": plan.name,
        "price_cents": plan.price_cents,
        "currency": plan.currency,
        "interval": plan.interval,
        "token_allowance": plan.token_allowance,
        "limits": {"projects": plan.max_projects, "deployments": plan.max_deployments},
        "byok": plan.byok,
        "features": list(plan.features),
        "purchasable": plan.is_paid and bool(plan.checkout_ids),
        "providers": sorted(plan.checkout_ids),
    }


def _original_plan_fields(plan: Plan) -> dict[str, Any]:
    """What the web app's plan cards read (lib/api/types.ts PlanDetails)."""
    return {
        "plan_id": plan.id,
        **_prices(plan),
        "token_quota": plan.token_allowance,
        "display_credits": credits(plan.token_allowance),
        "description": f"{plan.name}: " + (", ".join(plan.features) if plan.features else "runplane plan"),
    }


def subscription_json(sub: BillingSubscription, plan: Plan) -> dict[str, Any]:
    return {
        "plan": plan.id,
        "plan_name": plan.name,
        "status": sub.status,
        "provider": sub.provider,
        "subscription_id": sub.external_id,
        "current_period_start": iso(sub.current_period_start),
        "current_period_end": iso(sub.current_period_end),
        "cancel_at_period_end": sub.cancel_at_period_end,
        "created_at": iso(sub.created_at),
        "plan_details": plan_json(plan),
    }


def status_json(status: BillingStatus) -> dict[str, Any]:
    sub, plan = status.subscription, status.plan
    return {
        **_original_status_fields(status),
        "plan": plan.id,
        "plan_name": plan.name,
        "status": sub.status,
        "can_run": status.can_run,
        "quota_exhausted": status.quota_exhausted,
        "tokens_used": status.tokens_used,
        "tokens_limit": status.tokens_limit,
        "tokens_remaining": status.tokens_remaining,
        "period_start": iso(sub.current_period_start),
        "period_end": iso(sub.current_period_end),
        "cancel_at_period_end": sub.cancel_at_period_end,
        "byok_key_configured": status.has_own_key,
        "limits": {"projects": plan.max_projects, "deployments": plan.max_deployments},
        "projects_used": status.projects_used,
    }


def _original_status_fields(status: BillingStatus) -> dict[str, Any]:
    """What the web app reads (lib/api/types.ts BillingStatusResponse); unlimited quotas are null."""
    sub, plan = status.subscription, status.plan
    return {
        "account_id": str(sub.user_id),
        "plan_id": plan.id,
        **_prices(plan),
        "tokens_total": status.tokens_limit,
        "credits_total": credits(status.tokens_limit),
        "credits_remaining": credits(status.tokens_remaining),
        "quota_resets_at": iso(sub.current_period_end),
        "subscription_status": sub.status,
        "features": list(plan.features),
        "deployments_used": status.deployments_used,
        "deployments_total": plan.max_deployments,
        "message": "" if status.can_run else "Token allowance used up for this period: upgrade, or add your own key",
    }


def usage_line_json(line: UsageLine) -> dict[str, Any]:
    """One run's usage as the web app's usage table reads it (lib/api/types.ts TokenUsageEntry)."""
    entry = line.entry
    return {
        "id": str(entry.id),
        "account_id": str(entry.user_id),
        "run_id": str(entry.run_id),
        "thread_id": str(line.thread_id) if line.thread_id else None,
        "project_id": str(line.project_id) if line.project_id else None,
        "message_id": None,
        "model": entry.model,
        "source": entry.source,
        "prompt_tokens": entry.prompt_tokens,
        "completion_tokens": entry.completion_tokens,
        "total_tokens": entry.total_tokens,
        "tokens_remaining_after": None,  # not recorded per run
        "estimated_cost": 0.0,  # runplane bills tokens, not money, per run
        "created_at": iso(entry.created_at),
    }


def day_json(day: UsageDay) -> dict[str, Any]:
    return {
        "date": day.day.isoformat(),
        "prompt_tokens": day.prompt_tokens,
        "completion_tokens": day.completion_tokens,
        "total_tokens": day.total_tokens,
        "platform_tokens": day.platform_tokens,
        "runs": day.runs,
    }


def checkout_json(checkout: CheckoutSession) -> dict[str, Any]:
    return {
        "checkout_id": checkout.external_id,
        "session_id": checkout.external_id,
        "url": checkout.url,
        "checkout_url": checkout.url,
        "provider": checkout.provider,
        "plan": checkout.plan,
        "expires_at": iso(checkout.expires_at),
    }


KEY_LABEL = "OpenRouter API Key"  # runplane keeps no name of its own for a stored key


def key_status_json(row: UserModelKey | None, last_used: datetime | None = None) -> dict[str, Any]:
    if row is None:
        return {
            "has_key": False,
            "key_configured": False,
            "display_name": None,
            "last_used_at": None,
            "configured": False,
            "provider": key_ops.PROVIDER,
            "hint": None,
            "created_at": None,
            "last_tested_at": None,
            "last_test_status": None,
        }
    return {
        "has_key": True,
        "key_configured": row.last_test_status != KeyTestStatus.INVALID,
        "display_name": KEY_LABEL,
        "last_used_at": iso(last_used),
        "configured": True,
        "provider": row.provider,
        "hint": row.hint,
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
        "last_tested_at": iso(row.last_tested_at),
        "last_test_status": row.last_test_status,
    }


def country_json(found: CountryMethods, country_code: str | None) -> dict[str, Any]:
    return {
        "country_code": country_code,
        "country_name": found.country_name,
        "region": found.region,
        "currency": found.currency,
        "methods": found.methods,
        "fallback": found.fallback,
    }


@api.add("GET", "/billing/status", "Get subscription status and the period's token quota", tag=TAG, response=STATUS)
async def billing_status(request: Request, ctx: RequestContext) -> Response:
    return ok(status_json(await ops.billing_status(ctx)))


@api.add(
    "GET",
    "/billing/subscription",
    "Get subscription details",
    tag=TAG,
    response=obj(["subscription"], subscription=SUBSCRIPTION),
)
async def subscription(request: Request, ctx: RequestContext) -> Response:
    sub, plan = await ops.get_subscription(ctx)
    nested = subscription_json(sub, plan)
    # The web app reads the subscription flat (lib/api/types.ts SubscriptionStatus): the same facts, top level.
    flat = {k: nested[k] for k in ("status", "plan_name", "current_period_end", "cancel_at_period_end")}
    return ok({"subscription": nested, **flat, "price_id": plan.id, "has_schedule": False})


@api.add(
    "GET",
    "/billing/usage-history",
    "Get token usage per day (?start_date=&end_date=, at most 366 days)",
    tag=TAG,
    response=USAGE_HISTORY,
    query=[UsageQuery],
)
async def usage_history(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, UsageQuery)
    history = await ops.usage_history(ctx, start_date=query.start_date, end_date=query.end_date, days=query.days)
    return ok(usage_history_json(history, await ops.usage_lines(ctx, history), ctx.user_id))


def usage_history_json(history: UsageHistory, lines: list[UsageLine], account_id: uuid.UUID) -> dict[str, Any]:
    totals = history.totals
    return {
        "start_date": history.start.isoformat(),
        "end_date": history.end.isoformat(),
        "days": [day_json(d) for d in history.days],
        "totals": {**day_json(totals), "date": None},
        "account_id": str(account_id),
        "usage_entries": [usage_line_json(line) for line in lines],
        "total_tokens_used": totals.total_tokens,
        "total_credits_used": credits(totals.total_tokens),
    }


@api.add("GET", "/billing/plans", "List available plans", tag=TAG, response=PLAN_LIST)
async def plans(request: Request, ctx: RequestContext) -> Response:
    _sub, current = await ops.get_subscription(ctx)
    return ok({"plans": [plan_json(p) for p in ops.list_plans(ctx)], "current_plan": current.id})


@api.add(
    "POST",
    "/billing/create-checkout-session",
    "Create a checkout session with Polar or Stripe",
    tag=TAG,
    body=CheckoutCreate,
    response=CHECKOUT,
    errors=PAYMENT_ERRORS,
)
async def create_checkout_session(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, CheckoutCreate)
    checkout = await ops.create_checkout_session(
        ctx, plan=body.plan, provider=body.provider, success_url=body.success_url, cancel_url=body.cancel_url
    )
    plan = next((plan_json(p) for p in ops.list_plans(ctx) if p.id == checkout.plan), None)
    return ok({**checkout_json(checkout), "success": True, "message": "Checkout session created", "plan_details": plan})


@api.add(
    "POST",
    "/billing/upgrade-plan",
    "Upgrade (or downgrade) the subscription plan",
    tag=TAG,
    body=CheckoutCreate,
    response=UPGRADE,
    errors=PAYMENT_ERRORS,
)
async def upgrade_plan(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, CheckoutCreate)
    outcome = await ops.upgrade_plan(
        ctx, plan=body.plan, provider=body.provider, success_url=body.success_url, cancel_url=body.cancel_url
    )
    return ok(
        {
            "status": outcome.status,
            "subscription": subscription_json(outcome.subscription, outcome.plan),
            "checkout": checkout_json(outcome.checkout) if outcome.checkout else None,
        }
    )


@api.add(
    "POST",
    "/billing/openrouter-key",
    "Store your own OpenRouter key (encrypted at rest)",
    tag=TAG,
    body=KeyStore,
    response=KEY_STATUS,
    query=[AccountQuery],
    errors=(404,),  # an account_id that is not the caller's
)
async def set_key(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, KeyStore)
    key_ops.check_account(ctx, body.account_id or parse_query(request, AccountQuery).account_id)
    row = await key_ops.set_openrouter_key(ctx, key=body.api_key)
    return ok({**key_status_json(row), "success": True, "message": "OpenRouter API key stored"})


@api.add(
    "GET",
    "/billing/openrouter-key/status",
    "Whether a key is stored, with a masked hint",
    tag=TAG,
    response=KEY_STATUS,
    query=[AccountQuery],
    errors=(404,),
)
async def key_status(request: Request, ctx: RequestContext) -> Response:
    key_ops.check_account(ctx, parse_query(request, AccountQuery).account_id)
    row = await key_ops.openrouter_key_status(ctx)
    return ok(key_status_json(row, await key_ops.key_last_used(ctx.user_id) if row else None))


@api.add(
    "DELETE",
    "/billing/openrouter-key",
    "Remove the stored key",
    tag=TAG,
    response=obj(["deleted"], deleted=BOOL),
    query=[AccountQuery],
    errors=(404,),
)
async def delete_key(request: Request, ctx: RequestContext) -> Response:
    key_ops.check_account(ctx, parse_query(request, AccountQuery).account_id)
    return ok({"deleted": await key_ops.delete_openrouter_key(ctx), "success": True})


@api.add(
    "POST",
    "/billing/openrouter-key/test",
    "Test a key (the body's, else the stored one) against OpenRouter",
    tag=TAG,
    body=KeyTest,
    response=KEY_TEST,
    errors=(404, 409, 503),
)  # no stored key; it cannot be decrypted; unreachable
async def test_key(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, KeyTest, required=False)
    return ok(key_test_json(await key_ops.test_openrouter_key(ctx, key=body.api_key)))


def key_test_json(result: KeyTestResult) -> dict[str, Any]:
    key_info = {"usage": result.usage, "limit": result.limit, "limit_remaining": None, "is_free_tier": False}
    if result.usage is not None and result.limit is not None:
        key_info["limit_remaining"] = max(0.0, result.limit - result.usage)
    return {
        "valid": result.valid,
        "status": result.status,
        "source": result.source,
        "label": result.label,
        "usage": result.usage,
        "limit": result.limit,
        # The web app's KeyTestResult (hooks/react-query/settings/use-settings-queries.ts).
        "success": result.valid,
        "message": "The key works" if result.valid else "The provider refused this key",
        "error": None if result.valid else "invalid key",
        "key_info": key_info,
    }


@api.add(
    "GET",
    "/billing/payment-methods/regions",
    "List payment method regions",
    tag=TAG,
    response=obj(["regions"], regions={"type": "array", "items": {"type": "object"}}),
)
async def pm_regions(request: Request, ctx: RequestContext) -> Response:
    return ok({"regions": pm_ops.regions(ctx)})


@api.add(
    "GET",
    "/billing/payment-methods/all",
    "List all payment methods",
    tag=TAG,
    response=obj(["methods"], methods={"type": "array", "items": {"type": "object"}}),
)
async def pm_all(request: Request, ctx: RequestContext) -> Response:
    return ok({"methods": pm_ops.all_methods(ctx)})


@api.add(
    "GET",
    "/billing/payment-methods/region/{country_code}",
    "Payment methods for a country (ISO 3166 alpha-2)",
    tag=TAG,
    response=COUNTRY_METHODS,
)
async def pm_country(request: Request, ctx: RequestContext) -> Response:
    found = pm_ops.for_country(ctx, country_code=request.path_params["country_code"])
    return ok(country_json(found, found.country_code))


@api.add(
    "POST",
    "/billing/payment-methods/validate",
    "Validate a payment method for a country",
    tag=TAG,
    body=MethodValidation,
    response=VALIDATION,
)
async def pm_validate(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, MethodValidation)
    result = pm_ops.validate(
        ctx,
        country_code=body.country_code,
        payment_method=body.payment_method,
        currency=body.currency,
        recurring=body.recurring,
    )
    return ok(
        {
            "valid": result.valid,
            "country_code": result.country_code,
            "payment_method": result.payment_method,
            "currency": result.currency,
            "reason": result.reason,
        }
    )


@api.add(
    "GET",
    "/billing/payment-methods/presets",
    "Get payment method presets",
    tag=TAG,
    response=obj(["presets"], presets={"type": "array", "items": {"type": "object"}}),
)
async def pm_presets(request: Request, ctx: RequestContext) -> Response:
    return ok({"presets": pm_ops.presets(ctx)})


@api.add(
    "GET",
    "/billing/payment-methods/detect",
    "Detect the caller's country (CF-IPCountry, Accept-Language) and its methods",
    tag=TAG,
    response=obj(["country_code", "source"], source=STR, **COUNTRY_METHODS["properties"]),
)
async def pm_detect(request: Request, ctx: RequestContext) -> Response:
    found = pm_ops.detect(ctx, headers=dict(request.headers))
    return ok({**country_json(found.methods, found.country_code), "source": found.source})


# ---- admin (X-API-Key or an admin token) ----------------------------------------------------------


@api.add(
    "POST",
    "/billing/admin/reset-quotas",
    "Reset a user's (or every user's) token quota for the period",
    auth="admin",
    tag=ADMIN_TAG,
    body=QuotaReset,
    response=obj(["reset"], reset=INT),
    errors=(404,),
)  # no such user
async def reset_quotas(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, QuotaReset, required=False)
    return ok({"reset": await admin_ops.reset_quotas(ctx, user_id=body.user_id, all_users=body.all)})


@api.add(
    "GET",
    "/billing/admin/quota-status",
    "Quota status: one user (?user_id=) or a summary with the heaviest users",
    auth="admin",
    tag=ADMIN_TAG,
    response={"type": "object"},
    query=[QuotaQuery],
    errors=(404,),
)  # no such user
async def quota_status(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, QuotaQuery)
    if query.user_id is not None:
        status = await admin_ops.user_quota_status(ctx, user_id=query.user_id)
        return ok({"user_id": str(status.subscription.user_id), **status_json(status)})
    return ok(quota_report_json(await admin_ops.quota_status(ctx, first=query.limit)))


def quota_report_json(report: QuotaReport) -> dict[str, Any]:
    top = [
        {
            "user_id": str(row.subscription.user_id),
            "plan": row.plan.id,
            "tokens_used": row.tokens_used,
            "tokens_limit": row.plan.token_allowance,
            "exhausted": row.exhausted,
            "period_end": iso(row.subscription.current_period_end),
        }
        for row in report.top
    ]
    return {"users": report.users, "exhausted": report.exhausted, "by_plan": report.by_plan, "top": top}


@api.add(
    "GET",
    "/billing/admin/openrouter-cache/info",
    "Model catalogue cache info",
    auth="admin",
    tag=ADMIN_TAG,
    response={"type": "object"},
)
async def cache_info(request: Request, ctx: RequestContext) -> Response:
    return ok(admin_ops.model_cache_info(ctx))


@api.add(
    "POST",
    "/billing/admin/openrouter-cache/warm",
    "Refresh the model catalogue cache now",
    auth="admin",
    tag=ADMIN_TAG,
    response={"type": "object"},
)
async def cache_warm(request: Request, ctx: RequestContext) -> Response:
    return ok(await admin_ops.warm_model_cache(ctx))


@api.add(
    "POST",
    "/billing/admin/openrouter-cache/clear",
    "Clear the model catalogue cache",
    auth="admin",
    tag=ADMIN_TAG,
    response=obj(["cleared"], cleared=INT),
)
async def cache_clear(request: Request, ctx: RequestContext) -> Response:
    return ok({"cleared": admin_ops.clear_model_cache(ctx)})
