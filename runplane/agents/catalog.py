"""The model catalogue: the scripted agent always, plus the configured OpenAI-compatible provider's list."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from runplane.agents.keys import process_provider
from runplane.agents.providers.base import ModelInfo, ModelProvider
from runplane.agents.providers.registry import available_models, build_provider, default_model_cache
from runplane.services import Services

log = logging.getLogger("runplane.catalog")
SCRIPTED_MODELS = [
    ModelInfo(
        id="scripted/demo", name="Scripted offline agent (runs shell blocks from the prompt)", provider="scripted"
    )
]


def configured_providers(services: Services) -> dict[str, ModelProvider]:
    settings = services.settings
    if settings.model_provider != "openai" and not settings.model_base_url:
        return {}
    key = "openai-compatible"
    make = partial(build_provider, "openai", settings.model_base_url, settings.model_api_key, name=key)
    return {key: process_provider(services, key, make)}


async def list_available_models(services: Services) -> list[dict[str, Any]]:
    remote: list[ModelInfo] = []
    providers = configured_providers(services)
    if providers:
        try:
            remote = await available_models(providers, cache=default_model_cache)
        except Exception as exc:  # the catalogue degrades to the offline agent, it never fails the request
            log.warning("model catalogue unavailable: %s", exc)
    return [_model_json(m, services.settings.default_model) for m in (*SCRIPTED_MODELS, *remote)]


def _model_json(model: ModelInfo, default: str) -> dict[str, Any]:
    # Beside runplane's fields, those Cheatcode's model picker reads (frontend/src/lib/api/models.ts AvailableModel).
    return {
        "id": model.id,
        "name": model.name,
        "provider": model.provider,
        "context_length": model.context_length,
        "pricing": model.pricing,
        "default": model.id == default,
        "openrouter_id": model.id,
        "description": model.name,
        "max_tokens": model.context_length or 0,
        "context_window": model.context_length,
        **_costs_per_1k(model.pricing),
    }


def _costs_per_1k(pricing: dict[str, Any] | None) -> dict[str, float]:
    """OpenRouter prices are per token, as strings: per 1,000 tokens, as numbers, when they parse."""
    costs: dict[str, float] = {}
    for source, name in (("prompt", "cost_input_per_1k"), ("completion", "cost_output_per_1k")):
        try:
            costs[name] = float((pricing or {})[source]) * 1000
        except (KeyError, TypeError, ValueError):
            continue
    return costs
