"""Payment methods by country and region, from the table shipped with runplane (billing/payment_methods.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runplane.auth.abilities import BILLING_READ
from runplane.billing import payment_methods as table
from runplane.errors import InvalidInput
from runplane.resolvers.context import RequestContext
from runplane.resolvers.validation import clean_text


def _country(value: object, field: str = "country_code") -> str:
    code = clean_text(value, field, max_length=8).upper()
    if len(code) != 2 or not code.isascii() or not code.isalpha():
        raise InvalidInput(f"{field} must be a two-letter ISO 3166 country code", field=field)
    return code


def regions(ctx: RequestContext) -> list[dict[str, Any]]:
    ctx.require(BILLING_READ)
    return table.regions()


def all_methods(ctx: RequestContext) -> list[dict[str, Any]]:
    ctx.require(BILLING_READ)
    return table.all_methods()


def presets(ctx: RequestContext) -> list[dict[str, Any]]:
    ctx.require(BILLING_READ)
    return table.presets()


def for_country(ctx: RequestContext, *, country_code: str) -> table.CountryMethods:
    ctx.require(BILLING_READ)
    return table.for_country(_country(country_code))


@dataclass
class Validation:
    valid: bool
    country_code: str
    payment_method: str
    currency: str
    reason: str | None


def validate(
    ctx: RequestContext,
    *,
    country_code: str,
    payment_method: str,
    currency: str | None = None,
    recurring: bool = True,
) -> Validation:
    """Can this method pay in this country (and currency, and for a subscription)? Unknown methods are simply not
    valid."""
    ctx.require(BILLING_READ)
    code = _country(country_code)
    method_id = clean_text(payment_method, "payment_method", max_length=64).lower()
    wanted = clean_text(currency, "currency", max_length=3, required=False).lower() or None
    if wanted is not None and (len(wanted) != 3 or not wanted.isascii() or not wanted.isalpha()):
        raise InvalidInput("currency must be a three-letter ISO 4217 code", field="currency")
    if not isinstance(recurring, bool):
        raise InvalidInput("recurring must be a boolean", field="recurring")
    valid, reason = table.check(code, method_id, wanted, recurring)
    return Validation(valid, code, method_id, wanted or table.for_country(code).currency, reason)


@dataclass
class Detection:
    country_code: str | None
    source: str
    methods: table.CountryMethods


def detect(ctx: RequestContext, *, headers: Mapping[str, str]) -> Detection:
    """The caller's likely country from CDN headers (CF-IPCountry...) or Accept-Language, and its methods."""
    ctx.require(BILLING_READ)
    lowered = {k.lower(): v for k, v in headers.items() if isinstance(v, str)}
    country, source = table.detect_country(lowered, lowered.get("accept-language"))
    return Detection(country, source, table.for_country(country) if country else _default_methods())


def _default_methods() -> table.CountryMethods:
    return table.for_country("ZZ")  # not in the table: the default set, marked as a fallback
