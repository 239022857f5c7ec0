"""Feature flags from settings (RUNPLANE_FEATURE_FLAGS, a JSON object); served only when enabled."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runplane.errors import InvalidInput, NotFound
from runplane.resolvers.context import RequestContext

FLAG_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")


@dataclass(frozen=True)
class FeatureFlag:
    name: str
    enabled: bool
    description: str = ""


def parse_flags(raw: str | None) -> dict[str, FeatureFlag]:
    """`{"name": true}` or `{"name": {"enabled": true, "description": "..."}}`; anything else is a configuration
    error."""
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict):
        raise ValueError("RUNPLANE_FEATURE_FLAGS must be a JSON object")
    return {str(name): _flag(str(name), value) for name, value in data.items()}


def _flag(name: str, value: Any) -> FeatureFlag:
    if isinstance(value, bool):
        return FeatureFlag(name, value)
    if isinstance(value, dict) and isinstance(value.get("enabled"), bool):
        return FeatureFlag(name, value["enabled"], str(value.get("description") or ""))
    raise ValueError(f"feature flag {name!r} must be true/false or {{'enabled': bool}}")


def _flags(ctx: RequestContext) -> dict[str, FeatureFlag]:
    """Server-wide switches, the same for every caller: public, as in the original (the web app sends no token)."""
    if not ctx.settings.feature_flags_enabled:
        raise NotFound("Feature flags are not enabled")
    cache = ctx.services.extras
    if cache.get("feature_flags_raw") != ctx.settings.feature_flags or "feature_flags" not in cache:
        cache["feature_flags"] = parse_flags(ctx.settings.feature_flags)
        cache["feature_flags_raw"] = ctx.settings.feature_flags
    flags: dict[str, FeatureFlag] = cache["feature_flags"]
    return flags


async def list_flags(ctx: RequestContext) -> list[FeatureFlag]:
    return sorted(_flags(ctx).values(), key=lambda f: f.name)


async def get_flag(ctx: RequestContext, *, name: str) -> FeatureFlag:
    flags = _flags(ctx)
    if not isinstance(name, str) or not FLAG_NAME.match(name):
        raise InvalidInput("flag_name must be 1-100 letters, digits, '_', '.', ':' or '-'", field="flag_name")
    if name not in flags:
        raise NotFound(f"Feature flag '{name}' not found")
    return flags[name]
