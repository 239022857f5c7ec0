"""Building providers from configuration, and the cached model catalogue.

Model lists change rarely but fetching OpenRouter's is slow (hundreds of models), so they are
cached in memory with a TTL; admin routes expose the cache as info/warm/clear.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import httpx

from .base import ModelInfo, ModelProvider, ModelProviderError
from .openai_compatible import DEFAULT_TIMEOUT, OPENROUTER_BASE_URL, OpenAICompatibleProvider
from .scripted import ScriptedProvider

log = logging.getLogger(__name__)

ProviderKind = Literal["openai", "scripted"]
DEFAULT_MODEL_TTL = 300.0


def build_provider(
    kind: ProviderKind | str,
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    name: str | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    default_headers: Mapping[str, str] | None = None,
    http_client: httpx.AsyncClient | None = None,
    chunk_delay: float = 0.0,
) -> ModelProvider:
    """A provider for `kind`; "openai" means any OpenAI-compatible server (OpenRouter default)."""
    if kind == "scripted":
        return ScriptedProvider(chunk_delay=chunk_delay, name=name or "scripted")
    if kind == "openai":
        return OpenAICompatibleProvider(
            base_url or OPENROUTER_BASE_URL,
            api_key,
            timeout=timeout,
            default_headers=default_headers,
            http_client=http_client,
            name=name or "openai",
        )
    raise ValueError(f"unknown provider kind {kind!r} (expected 'openai' or 'scripted')")


@dataclass(frozen=True, slots=True)
class _Entry:
    models: list[ModelInfo]
    fetched_at: float


class ModelCache:
    """Per-provider model lists with a TTL. A failed refresh keeps serving the stale list.

    No lock around refreshes: two concurrent misses fetch twice, which is harmless, and a lock
    would bind the cache to one event loop.
    """

    def __init__(self, ttl: float = DEFAULT_MODEL_TTL, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._errors: dict[str, str] = {}

    async def get(self, name: str, provider: ModelProvider) -> list[ModelInfo]:
        entry = self._entries.get(name)
        if entry is not None and self._age(entry) < self.ttl:
            return entry.models
        try:
            return await self.refresh(name, provider)
        except ModelProviderError:
            if entry is None:
                raise
            return entry.models  # stale beats empty while the provider is down

    async def refresh(self, name: str, provider: ModelProvider) -> list[ModelInfo]:
        try:
            models = [replace(m, provider=name) for m in await provider.list_models()]
        except ModelProviderError as err:
            self._errors[name] = err.message
            raise
        self._entries[name] = _Entry(models, self._clock())
        self._errors.pop(name, None)
        return models

    async def warm(self, providers: Mapping[str, ModelProvider]) -> dict[str, Any]:
        """Refresh every provider now, regardless of TTL; returns `info()`."""
        results = await asyncio.gather(*(self.refresh(n, p) for n, p in providers.items()), return_exceptions=True)
        for name, result in zip(providers, results, strict=True):
            if isinstance(result, BaseException):
                _log_failure(name, result)  # already recorded in info()["entries"][name]
        return self.info()

    def clear(self, name: str | None = None) -> int:
        """Drop one provider's list, or all; returns how many entries were dropped."""
        names = [name] if name is not None else list(self._entries)
        dropped = sum(self._entries.pop(n, None) is not None for n in names)
        for n in names:
            self._errors.pop(n, None)
        return dropped

    def info(self) -> dict[str, Any]:
        entries = {name: self._entry_info(entry) for name, entry in self._entries.items()}
        for name, error in self._errors.items():
            entries.setdefault(name, {"models": 0, "fresh": False})["last_error"] = error
        return {"ttl_seconds": self.ttl, "entries": entries}

    def _entry_info(self, entry: _Entry) -> dict[str, Any]:
        age = self._age(entry)
        return {
            "models": len(entry.models),
            "age_seconds": round(age, 3),
            "expires_in_seconds": round(max(0.0, self.ttl - age), 3),
            "fresh": age < self.ttl,
        }

    def _age(self, entry: _Entry) -> float:
        return self._clock() - entry.fetched_at


default_model_cache = ModelCache()


async def available_models(
    providers: Mapping[str, ModelProvider], *, cache: ModelCache | None = None
) -> list[ModelInfo]:
    """All models of all providers, keyed by provider name; a failing provider is skipped."""
    cache = default_model_cache if cache is None else cache
    results = await asyncio.gather(*(cache.get(n, p) for n, p in providers.items()), return_exceptions=True)
    merged: dict[tuple[str, str], ModelInfo] = {}
    for name, result in zip(providers, results, strict=True):
        if isinstance(result, BaseException):
            _log_failure(name, result)
            continue
        for model in result:
            merged.setdefault((model.provider, model.id), model)
    return list(merged.values())


def _log_failure(name: str, error: BaseException) -> None:
    if not isinstance(error, ModelProviderError):
        raise error  # a bug, not an outage: don't hide it
    log.warning("model list of %s unavailable: %s", name, error.message)
