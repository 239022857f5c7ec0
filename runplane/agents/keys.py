"""The model provider a run talks to: the owner's own key (BYOK) for non-scripted models, else the shared one."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from runplane.agents.providers.base import ModelProvider
from runplane.agents.providers.openai_compatible import OPENROUTER_BASE_URL, OpenAICompatibleProvider
from runplane.agents.providers.registry import build_provider
from runplane.billing.model_keys import is_scripted, stored_key
from runplane.config import Settings
from runplane.models import AgentRun
from runplane.services import Services


def key_base_url(settings: Settings) -> str:
    return settings.byok_base_url or settings.model_base_url or OPENROUTER_BASE_URL


@asynccontextmanager
async def run_provider(services: Services, run: AgentRun) -> AsyncIterator[ModelProvider]:
    """A per-run provider (the owner's key) is closed when the run ends; the shared one stays open."""
    key = None if is_scripted(run.model) else await stored_key(services.settings, run.owner_id)
    if key is None:
        yield shared_provider(services, run)
        return
    # The owner's key on the process's pooled client: the provider object is per run, the connections are not.
    async with OpenAICompatibleProvider(
        key_base_url(services.settings), key, name="byok", http_client=services.http("byok")
    ) as provider:
        yield provider


def shared_provider(services: Services, run: AgentRun) -> ModelProvider:
    """Scripted models run offline; everything else goes to the configured OpenAI-compatible API. One provider of
    each kind per process, kept on the services (which close it)."""
    kind = "scripted" if is_scripted(run.model) else "openai"
    settings = services.settings
    make = partial(
        build_provider, kind, settings.model_base_url, settings.model_api_key, chunk_delay=settings.scripted_chunk_delay
    )
    return process_provider(services, kind, make)


def process_provider(services: Services, key: str, make: Callable[[], ModelProvider]) -> ModelProvider:
    """The process's provider under `key`, made on first use. Services holds them only as things to close (it sits
    below the engine), so what it hands back is checked to be a ModelProvider (the Protocol is runtime-checkable)."""
    provider = services.model_providers.get(key)
    if not isinstance(provider, ModelProvider):
        provider = make()
        services.model_providers[key] = provider
    return provider
