"""Billing on GraphQL: the twins of the /api/billing routes (status, plans, usage, checkout, own keys,
payment methods, admin). Each field calls one resolver and shapes its result."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON

from runplane import models
from runplane.billing.payment_methods import CountryMethods
from runplane.billing.plans import Plan
from runplane.resolvers import billing as ops
from runplane.resolvers import billing_admin as admin_ops
from runplane.resolvers import byok as key_ops
from runplane.resolvers import payment_methods as pm_ops
from runplane.schema.context import context, rctx
from runplane.schema.enums import KeySource, KeyTestStatus, PaymentProvider, UpgradeStatus
from runplane.schema.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    RateLimitedError,
    typed_errors,
)
from runplane.schema.ids import from_global_id, to_global_id


@strawberry.type
class PlanLimits:
    projects: int | None
    deployments: int | None


@strawberry.type
class BillingPlan:
    id: str
    name: str
    price_cents: int
    currency: str
    interval: str
    token_allowance: int | None = strawberry.field(description="Platform tokens per billing period; null is unlimited.")
    limits: PlanLimits
    byok: bool
    features: list[str]
    purchasable: bool
    providers: list[PaymentProvider]

    @classmethod
    def from_plan(cls, plan: Plan) -> "BillingPlan":
        return cls(
            id=plan.id,
            name=plan.name,
            price_cents=plan.price_cents,
            currency=plan.currency,
            interval=plan.interval,
            token_allowance=plan.token_allowance,
            limits=PlanLimits(projects=plan.max_projects, deployments=plan.max_deployments),
            byok=plan.byok,
            features=list(plan.features),
            purchasable=plan.is_paid and bool(plan.checkout_ids),
            providers=[PaymentProvider(p) for p in sorted(plan.checkout_ids)],
        )


@strawberry.type
class BillingSubscription:
    id: strawberry.ID = strawberry.field(description="Stable per subscription (Apollo's cache key).")
    plan: BillingPlan
    status: str
    provider: PaymentProvider | None
    subscription_id: str | None
    current_period_start: datetime
    current_period_end: datetime
    cancel_at_period_end: bool

    @classmethod
    def from_row(cls, row: models.BillingSubscription, plan: Plan) -> "BillingSubscription":
        return cls(
            id=to_global_id("BillingSubscription", row.id),
            plan=BillingPlan.from_plan(plan),
            status=row.status,
            provider=PaymentProvider(row.provider) if row.provider else None,
            subscription_id=row.external_id,
            current_period_start=row.current_period_start,
            current_period_end=row.current_period_end,
            cancel_at_period_end=row.cancel_at_period_end,
        )


@strawberry.type
class BillingStatus:
    id: strawberry.ID = strawberry.field(description="Stable per user (Apollo's cache key).")
    plan: BillingPlan
    status: str
    can_run: bool
    quota_exhausted: bool
    tokens_used: int
    tokens_limit: int | None
    tokens_remaining: int | None
    period_start: datetime
    period_end: datetime
    cancel_at_period_end: bool
    byok_key_configured: bool
    projects_used: int

    @classmethod
    def from_status(cls, status: ops.BillingStatus) -> "BillingStatus":
        sub = status.subscription
        return cls(
            id=to_global_id("BillingStatus", sub.user_id),
            plan=BillingPlan.from_plan(status.plan),
            status=sub.status,
            can_run=status.can_run,
            quota_exhausted=status.quota_exhausted,
            tokens_used=status.tokens_used,
            tokens_limit=status.tokens_limit,
            tokens_remaining=status.tokens_remaining,
            period_start=sub.current_period_start,
            period_end=sub.current_period_end,
            cancel_at_period_end=sub.cancel_at_period_end,
            byok_key_configured=status.has_own_key,
            projects_used=status.projects_used,
        )


@strawberry.type
class UsageDay:
    date: date | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    platform_tokens: int
    runs: int

    @classmethod
    def from_day(cls, day: ops.UsageDay, *, dated: bool = True) -> "UsageDay":
        return cls(
            date=day.day if dated else None,
            prompt_tokens=day.prompt_tokens,
            completion_tokens=day.completion_tokens,
            total_tokens=day.total_tokens,
            platform_tokens=day.platform_tokens,
            runs=day.runs,
        )


@strawberry.type
class UsageHistory:
    start_date: date
    end_date: date
    days: list[UsageDay]
    totals: UsageDay


@strawberry.type
class CheckoutSession:
    checkout_id: str
    url: str
    provider: PaymentProvider
    plan: str
    expires_at: datetime | None

    @classmethod
    def from_row(cls, row: models.CheckoutSession) -> "CheckoutSession":
        return cls(
            checkout_id=row.external_id,
            url=row.url,
            provider=PaymentProvider(row.provider),
            plan=row.plan,
            expires_at=row.expires_at,
        )


@strawberry.type
class UpgradePlanPayload:
    status: UpgradeStatus
    subscription: BillingSubscription
    checkout: CheckoutSession | None


@strawberry.type
class OpenrouterKeyStatus:
    configured: bool
    provider: str
    hint: str | None = strawberry.field(
        description="The key's prefix and last four characters; the key itself is never returned."
    )
    created_at: datetime | None
    last_tested_at: datetime | None
    last_test_status: KeyTestStatus | None

    @classmethod
    def from_row(cls, row: models.UserModelKey | None) -> "OpenrouterKeyStatus":
        if row is None:
            return cls(
                configured=False,
                provider=key_ops.PROVIDER,
                hint=None,
                created_at=None,
                last_tested_at=None,
                last_test_status=None,
            )
        return cls(
            configured=True,
            provider=row.provider,
            hint=row.hint,
            created_at=row.created_at,
            last_tested_at=row.last_tested_at,
            last_test_status=KeyTestStatus(row.last_test_status) if row.last_test_status else None,
        )


@strawberry.type
class DeleteOpenrouterKeyPayload:
    deleted: bool


@strawberry.type
class OpenrouterKeyTest:
    valid: bool
    status: KeyTestStatus
    source: KeySource
    label: str | None
    usage: float | None
    limit: float | None


@strawberry.type
class PaymentMethod:
    id: str
    name: str
    type: str
    currencies: list[str]
    recurring: bool
    providers: list[str]

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> "PaymentMethod":
        return cls(
            id=item["id"],
            name=item["name"],
            type=item["type"],
            currencies=list(item["currencies"]),
            recurring=bool(item["recurring"]),
            providers=list(item["providers"]),
        )


@strawberry.type
class PaymentRegion:
    id: str
    name: str
    currency: str
    countries: list[str]


@strawberry.type
class PaymentPreset:
    id: str
    name: str
    methods: list[PaymentMethod]


@strawberry.type
class CountryPaymentMethods:
    country_code: str | None
    country_name: str | None
    region: str | None
    currency: str
    methods: list[PaymentMethod]
    fallback: bool = strawberry.field(
        description="True when the country is not in the table and the default methods are offered."
    )
    source: str | None = strawberry.field(
        default=None, description="detectPaymentRegion only: the header the country came from."
    )

    @classmethod
    def from_found(
        cls, found: CountryMethods, country_code: str | None, source: str | None = None
    ) -> "CountryPaymentMethods":
        return cls(
            country_code=country_code,
            country_name=found.country_name,
            region=found.region,
            currency=found.currency,
            methods=[PaymentMethod.from_json(m) for m in found.methods],
            fallback=found.fallback,
            source=source,
        )


@strawberry.type
class PaymentMethodValidation:
    valid: bool
    country_code: str
    payment_method: str
    currency: str
    reason: str | None


@strawberry.input
class CheckoutInput:
    plan: str
    provider: PaymentProvider | None = None
    success_url: str | None = None
    cancel_url: str | None = None


@strawberry.input
class PaymentMethodInput:
    country_code: str
    payment_method: str
    currency: str | None = None
    recurring: bool = True


@strawberry.type
class PlanCount:
    plan: str
    users: int


@strawberry.type
class QuotaUser:
    user_id: strawberry.ID
    plan: str
    tokens_used: int
    tokens_limit: int | None
    exhausted: bool
    period_end: datetime


@strawberry.type
class QuotaReport:
    users: int
    exhausted: int
    by_plan: list[PlanCount]
    top: list[QuotaUser]


@strawberry.type
class ResetQuotasPayload:
    reset: int


BillingError = InputError | NotFoundError | ConflictError | ForbiddenError | RateLimitedError
CheckoutResult = Annotated[CheckoutSession | BillingError, strawberry.union("CheckoutResult")]
UpgradePlanResult = Annotated[UpgradePlanPayload | BillingError, strawberry.union("UpgradePlanResult")]
SetOpenrouterKeyResult = Annotated[
    OpenrouterKeyStatus | InputError | ForbiddenError, strawberry.union("SetOpenrouterKeyResult")
]
DeleteOpenrouterKeyResult = Annotated[
    DeleteOpenrouterKeyPayload | ForbiddenError, strawberry.union("DeleteOpenrouterKeyResult")
]
TestOpenrouterKeyResult = Annotated[OpenrouterKeyTest | BillingError, strawberry.union("TestOpenrouterKeyResult")]
ResetQuotasResult = Annotated[
    ResetQuotasPayload | InputError | NotFoundError | ForbiddenError, strawberry.union("ResetQuotasResult")
]


def _user_id(value: strawberry.ID | None) -> uuid.UUID | None:
    return None if value is None else from_global_id(value, "User")


@strawberry.type
class BillingQueries:
    @strawberry.field(description="The caller's plan, period and token quota.")
    async def billing_status(self, info: strawberry.Info) -> BillingStatus:
        return BillingStatus.from_status(await ops.billing_status(rctx(info)))

    @strawberry.field(description="The caller's subscription.")
    async def subscription(self, info: strawberry.Info) -> BillingSubscription:
        row, plan = await ops.get_subscription(rctx(info))
        return BillingSubscription.from_row(row, plan)

    @strawberry.field(
        description="Token usage per UTC day between two dates (YYYY-MM-DD, at most 366 days; default the last 30)."
    )
    async def usage_history(
        self, info: strawberry.Info, start_date: date | None = None, end_date: date | None = None
    ) -> UsageHistory:
        history = await ops.usage_history(rctx(info), start_date=start_date, end_date=end_date)
        return UsageHistory(
            start_date=history.start,
            end_date=history.end,
            days=[UsageDay.from_day(d) for d in history.days],
            totals=UsageDay.from_day(history.totals, dated=False),
        )

    @strawberry.field
    def plans(self, info: strawberry.Info) -> list[BillingPlan]:
        return [BillingPlan.from_plan(p) for p in ops.list_plans(rctx(info))]

    @strawberry.field(description="Whether the caller stored an OpenRouter key, with a masked hint.")
    async def openrouter_key_status(self, info: strawberry.Info) -> OpenrouterKeyStatus:
        return OpenrouterKeyStatus.from_row(await key_ops.openrouter_key_status(rctx(info)))

    @strawberry.field
    def payment_method_regions(self, info: strawberry.Info) -> list[PaymentRegion]:
        return [
            PaymentRegion(id=r["id"], name=r["name"], currency=r["currency"], countries=r["countries"])
            for r in pm_ops.regions(rctx(info))
        ]

    @strawberry.field(description="Every payment method of the table.")
    def payment_methods(self, info: strawberry.Info) -> list[PaymentMethod]:
        return [PaymentMethod.from_json(m) for m in pm_ops.all_methods(rctx(info))]

    @strawberry.field(description="Payment methods offered in a country (ISO 3166 alpha-2).")
    def payment_methods_for_country(self, info: strawberry.Info, country_code: str) -> CountryPaymentMethods:
        found = pm_ops.for_country(rctx(info), country_code=country_code)
        return CountryPaymentMethods.from_found(found, found.country_code)

    @strawberry.field
    def payment_method_presets(self, info: strawberry.Info) -> list[PaymentPreset]:
        return [
            PaymentPreset(id=p["id"], name=p["name"], methods=[PaymentMethod.from_json(m) for m in p["methods"]])
            for p in pm_ops.presets(rctx(info))
        ]

    @strawberry.field(
        description="The caller's likely country (CDN country headers, then Accept-Language) and its methods."
    )
    def detect_payment_region(self, info: strawberry.Info) -> CountryPaymentMethods:
        request = context(info).request
        headers = dict(request.headers) if request is not None else {}
        found = pm_ops.detect(rctx(info), headers=headers)
        return CountryPaymentMethods.from_found(found.methods, found.country_code, found.source)

    @strawberry.field(
        description="Whether a payment method can pay in a country (and currency, and for a subscription)."
    )
    def validate_payment_method(self, info: strawberry.Info, input: PaymentMethodInput) -> PaymentMethodValidation:
        result = pm_ops.validate(
            rctx(info),
            country_code=input.country_code,
            payment_method=input.payment_method,
            currency=input.currency,
            recurring=input.recurring,
        )
        return PaymentMethodValidation(
            valid=result.valid,
            country_code=result.country_code,
            payment_method=result.payment_method,
            currency=result.currency,
            reason=result.reason,
        )

    @strawberry.field(
        description="Admin: users per plan, how many spent their allowance, the heaviest users of the period."
    )
    async def billing_quota_report(self, info: strawberry.Info, first: int = 50) -> QuotaReport:
        report = await admin_ops.quota_status(rctx(info), first=first)
        return QuotaReport(
            users=report.users,
            exhausted=report.exhausted,
            by_plan=[PlanCount(plan=p, users=n) for p, n in sorted(report.by_plan.items())],
            top=[
                QuotaUser(
                    user_id=to_global_id("User", r.subscription.user_id),
                    plan=r.plan.id,
                    tokens_used=r.tokens_used,
                    tokens_limit=r.plan.token_allowance,
                    exhausted=r.exhausted,
                    period_end=r.subscription.current_period_end,
                )
                for r in report.top
            ],
        )

    @strawberry.field(description="Admin: one user's billing status.")
    async def user_billing_status(self, info: strawberry.Info, user_id: strawberry.ID) -> BillingStatus | None:
        return BillingStatus.from_status(
            await admin_ops.user_quota_status(rctx(info), user_id=from_global_id(user_id, "User"))
        )

    @strawberry.field(description="Admin: the model catalogue cache (OpenRouter models).")
    def model_cache_info(self, info: strawberry.Info) -> JSON:
        return cast(JSON, admin_ops.model_cache_info(rctx(info)))


@strawberry.type
class BillingMutations:
    @strawberry.mutation(description="A hosted checkout (Polar or Stripe) for a paid plan.")
    @typed_errors
    async def create_checkout_session(self, info: strawberry.Info, input: CheckoutInput) -> CheckoutResult:
        row = await ops.create_checkout_session(
            rctx(info),
            plan=input.plan,
            provider=input.provider,
            success_url=input.success_url,
            cancel_url=input.cancel_url,
        )
        return CheckoutSession.from_row(row)

    @strawberry.mutation(
        description="Change plan: with the provider when it manages the subscription, else through a checkout."
    )
    @typed_errors
    async def upgrade_plan(self, info: strawberry.Info, input: CheckoutInput) -> UpgradePlanResult:
        outcome = await ops.upgrade_plan(
            rctx(info),
            plan=input.plan,
            provider=input.provider,
            success_url=input.success_url,
            cancel_url=input.cancel_url,
        )
        return UpgradePlanPayload(
            status=UpgradeStatus(outcome.status),
            subscription=BillingSubscription.from_row(outcome.subscription, outcome.plan),
            checkout=CheckoutSession.from_row(outcome.checkout) if outcome.checkout else None,
        )

    @strawberry.mutation(description="Store the caller's OpenRouter key (encrypted at rest).")
    @typed_errors
    async def set_openrouter_key(self, info: strawberry.Info, api_key: str) -> SetOpenrouterKeyResult:
        return OpenrouterKeyStatus.from_row(await key_ops.set_openrouter_key(rctx(info), key=api_key))

    @strawberry.mutation
    @typed_errors
    async def delete_openrouter_key(self, info: strawberry.Info) -> DeleteOpenrouterKeyResult:
        return DeleteOpenrouterKeyPayload(deleted=await key_ops.delete_openrouter_key(rctx(info)))

    @strawberry.mutation(
        description="Check a key (the given one, else the stored one) against the provider's key endpoint."
    )
    @typed_errors
    async def test_openrouter_key(self, info: strawberry.Info, api_key: str | None = None) -> TestOpenrouterKeyResult:
        result = await key_ops.test_openrouter_key(rctx(info), key=api_key)
        return OpenrouterKeyTest(
            valid=result.valid,
            status=KeyTestStatus(result.status),
            source=KeySource(result.source),
            label=result.label,
            usage=result.usage,
            limit=result.limit,
        )

    @strawberry.mutation(
        description="Admin: give one user (or, with all: true, everyone) the period's full allowance again."
    )
    @typed_errors
    async def reset_quotas(
        self, info: strawberry.Info, user_id: strawberry.ID | None = None, all: bool = False
    ) -> ResetQuotasResult:
        return ResetQuotasPayload(
            reset=await admin_ops.reset_quotas(rctx(info), user_id=_user_id(user_id), all_users=all)
        )

    @strawberry.mutation(description="Admin: refresh the model catalogue cache now.")
    async def warm_model_cache(self, info: strawberry.Info) -> JSON:
        return cast(JSON, await admin_ops.warm_model_cache(rctx(info)))

    @strawberry.mutation(description="Admin: clear the model catalogue cache; returns how many entries were dropped.")
    def clear_model_cache(self, info: strawberry.Info) -> int:
        return admin_ops.clear_model_cache(rctx(info))
