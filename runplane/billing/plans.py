"""Plans from configuration: a token allowance per billing period and limits per plan.

The built-in table below is used unless RUNPLANE_BILLING_PLANS gives a JSON list (or a path to a JSON file)
of plan objects with the same keys. Checkout ids per provider come from the plan objects or from
RUNPLANE_POLAR_PRODUCTS / RUNPLANE_STRIPE_PRICES ("pro=prod_123,premium=prod_456").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from runplane.config import Settings
from runplane.models.choices import PaymentProvider

PROVIDERS: tuple[str, ...] = tuple(PaymentProvider)


@dataclass(frozen=True)
class Plan:
    id: str
    name: str
    price_cents: int = 0
    currency: str = "usd"
    interval: str = "month"
    # Platform tokens per billing period; None means unlimited.
    token_allowance: int | None = 0
    max_projects: int | None = None
    max_deployments: int | None = None
    # Runs on non-scripted models use the user's own OpenRouter key (the allowance is then not spent).
    byok: bool = False
    features: tuple[str, ...] = ()
    checkout_ids: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_paid(self) -> bool:
        return self.price_cents > 0

    def checkout_id(self, provider: str) -> str | None:
        return self.checkout_ids.get(provider)


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan(
        "free",
        "Free",
        0,
        token_allowance=200_000,
        max_projects=3,
        max_deployments=1,
        features=("200k tokens per month", "3 projects", "1 deployment"),
    ),
    Plan(
        "pro",
        "Pro",
        2000,
        token_allowance=5_000_000,
        max_projects=50,
        max_deployments=20,
        features=("5M tokens per month", "50 projects", "20 deployments"),
    ),
    Plan(
        "premium",
        "Premium",
        5000,
        token_allowance=20_000_000,
        max_projects=None,
        max_deployments=None,
        features=("20M tokens per month", "Unlimited projects", "Unlimited deployments"),
    ),
    Plan(
        "byok",
        "Bring your own key",
        1000,
        token_allowance=0,
        max_projects=None,
        max_deployments=50,
        byok=True,
        features=("Your own OpenRouter key", "Unlimited projects", "50 deployments"),
    ),
)


class PlanBook:
    """The configured plans, by id, with the default (free) plan every user starts on."""

    def __init__(self, plans: tuple[Plan, ...], default_id: str) -> None:
        if not plans:
            raise ValueError("billing: at least one plan must be configured")
        self.plans = {plan.id: plan for plan in plans}
        if len(self.plans) != len(plans):
            raise ValueError("billing: plan ids must be unique")
        if default_id not in self.plans:
            raise ValueError(f"billing: default plan {default_id!r} is not configured")
        self.default = self.plans[default_id]

    def get(self, plan_id: str) -> Plan | None:
        return self.plans.get(plan_id)

    def effective(self, plan_id: str) -> Plan:
        """The plan a stored subscription is on; a plan removed from the configuration falls back to the default."""
        return self.plans.get(plan_id, self.default)

    def all(self) -> list[Plan]:
        return list(self.plans.values())

    def by_checkout_id(self, provider: str, checkout_id: str) -> Plan | None:
        return next((p for p in self.plans.values() if p.checkout_id(provider) == checkout_id), None)


def plan_book(settings: Settings) -> PlanBook:
    return _plan_book(
        settings.billing_plans, settings.billing_default_plan, settings.polar_products, settings.stripe_prices
    )


@lru_cache(maxsize=8)
def _plan_book(raw: str | None, default_id: str, polar: tuple[str, ...], stripe: tuple[str, ...]) -> PlanBook:
    plans = DEFAULT_PLANS if raw is None else tuple(_plan_from_json(item) for item in _load_json(raw))
    overrides = {"polar": _pairs(polar, "POLAR_PRODUCTS"), "stripe": _pairs(stripe, "STRIPE_PRICES")}
    merged = tuple(
        replace(
            p, checkout_ids={**p.checkout_ids, **{prov: ids[p.id] for prov, ids in overrides.items() if p.id in ids}}
        )
        for p in plans
    )
    return PlanBook(merged, default_id)


def _load_json(raw: str) -> list[Any]:
    text = raw.strip()
    if not text.startswith(("[", "{")):
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise ValueError(f"billing: RUNPLANE_BILLING_PLANS is neither JSON nor a readable file ({exc})") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"billing: RUNPLANE_BILLING_PLANS is not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise ValueError("billing: RUNPLANE_BILLING_PLANS must be a JSON list of plans")
    return data


def _plan_from_json(item: Any) -> Plan:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
        raise ValueError("billing: every plan needs a string id")
    ids = {prov: str(item[f"{prov}_id"]) for prov in PROVIDERS if item.get(f"{prov}_id")}
    return Plan(
        id=item["id"],
        name=str(item.get("name") or item["id"]),
        price_cents=_count(item, "price_cents", 0),
        currency=str(item.get("currency", "usd")).lower(),
        interval=str(item.get("interval", "month")),
        token_allowance=_optional_count(item, "token_allowance", 0),
        max_projects=_optional_count(item, "max_projects", None),
        max_deployments=_optional_count(item, "max_deployments", None),
        byok=bool(item.get("byok", False)),
        features=tuple(str(f) for f in item.get("features", [])),
        checkout_ids=ids,
    )


def _count(item: dict[str, Any], key: str, default: int) -> int:
    value = item.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"billing: plan {item['id']!r}: {key} must be a non-negative integer")
    return value


def _optional_count(item: dict[str, Any], key: str, default: int | None) -> int | None:
    """Like _count, but null (or absent with no default) means unlimited."""
    if item.get(key) is None:
        return default if key not in item else None
    return _count(item, key, 0)


def _pairs(entries: tuple[str, ...], setting: str) -> dict[str, str]:
    pairs = {}
    for entry in entries:
        plan_id, sep, value = entry.partition("=")
        if not sep or not plan_id.strip() or not value.strip():
            raise ValueError(f"billing: RUNPLANE_{setting} entries look like plan=id, got {entry!r}")
        pairs[plan_id.strip()] = value.strip()
    return pairs
