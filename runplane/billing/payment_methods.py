"""The payment-method table shipped in runplane/data/payment_methods.json: which methods exist, which
countries and regions offer them, presets, and guessing a caller's country from request headers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

# Headers set by CDNs and edge proxies; "XX" (unknown) and "T1" (Tor) say nothing about the country.
COUNTRY_HEADERS = (
    "cf-ipcountry",
    "x-vercel-ip-country",
    "cloudfront-viewer-country",
    "x-country-code",
    "x-appengine-country",
)
UNKNOWN_COUNTRIES = frozenset({"XX", "T1", "ZZ"})


@dataclass(frozen=True)
class CountryMethods:
    country_code: str
    country_name: str | None
    region: str | None
    currency: str
    methods: list[dict[str, Any]]
    fallback: bool  # the country is not in the table: the default methods are offered


@lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    raw = resources.files("runplane").joinpath("data/payment_methods.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(raw)
    data["methods_by_id"] = {m["id"]: m for m in data["methods"]}
    return data


def all_methods() -> list[dict[str, Any]]:
    return list(table()["methods"])


def method(method_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = table()["methods_by_id"].get(method_id)
    return found


def _methods(ids: list[str]) -> list[dict[str, Any]]:
    return [found for method_id in ids if (found := method(method_id)) is not None]


def regions() -> list[dict[str, Any]]:
    data = table()
    return [
        {
            "id": region_id,
            **region,
            "countries": sorted(c for c, info in data["countries"].items() if info["region"] == region_id),
        }
        for region_id, region in data["regions"].items()
    ]


def presets() -> list[dict[str, Any]]:
    return [{**preset, "methods": [method(m) for m in preset["methods"]]} for preset in table()["presets"]]


def for_country(code: str) -> CountryMethods:
    data = table()
    info = data["countries"].get(code)
    if info is None:
        default = data["default"]
        return CountryMethods(code, None, None, default["currency"], _methods(default["methods"]), fallback=True)
    return CountryMethods(
        code, info["name"], info["region"], info["currency"], _methods(info["methods"]), fallback=False
    )


def check(code: str, method_id: str, currency: str | None, recurring: bool) -> tuple[bool, str | None]:
    """Whether `method_id` can pay in `code` (in `currency`, for a subscription if `recurring`), and why not."""
    found = method(method_id)
    if found is None:
        return False, f"Unknown payment method '{method_id}'"
    offered = for_country(code)
    if method_id not in {m["id"] for m in offered.methods}:
        return False, f"{found['name']} is not available in {offered.country_name or code}"
    wanted = currency or offered.currency
    if "*" not in found["currencies"] and wanted not in found["currencies"]:
        return False, f"{found['name']} does not support {wanted.upper()}"
    if recurring and not found["recurring"]:
        return False, f"{found['name']} cannot pay a subscription"
    return True, None


def detect_country(country_headers: dict[str, str], accept_language: str | None) -> tuple[str | None, str]:
    """(ISO country code or None, where it came from: a CDN header's name, "accept-language" or "default")."""
    for name in COUNTRY_HEADERS:
        value = (country_headers.get(name) or "").strip().upper()
        if len(value) == 2 and value.isalpha() and value not in UNKNOWN_COUNTRIES:
            return value, name
    country = _from_accept_language(accept_language or "")
    return (country, "accept-language") if country else (None, "default")


def _from_accept_language(header: str) -> str | None:
    """The first language range with a region ("de-AT" -> AT), else the first language's usual country."""
    languages: dict[str, str] = table()["languages"]
    tags = [part.split(";")[0].strip() for part in header[:500].split(",") if part.strip()]
    for tag in tags:
        pieces = tag.replace("_", "-").split("-")
        if len(pieces) >= 2 and len(pieces[-1]) == 2 and pieces[-1].isalpha():
            return pieces[-1].upper()
    for tag in tags:
        country = languages.get(tag.split("-")[0].lower())
        if country:
            return country
    return None
