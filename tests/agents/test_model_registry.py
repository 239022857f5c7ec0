"""build_provider and the cached model catalogue (TTL, clear, warm, merge)."""

from __future__ import annotations

import pytest

from runplane.agents.providers import (
    ModelCache,
    ModelProvider,
    ModelProviderError,
    OpenAICompatibleProvider,
    ScriptedProvider,
    available_models,
    build_provider,
)
from runplane.agents.providers.openai_compatible import OPENROUTER_BASE_URL
from tests.agents.provider_support import API_KEY, SleepRecorder
from tests.fakes.openai_server import FakeOpenAIServer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def model_list_calls(server: FakeOpenAIServer) -> int:
    return sum(r.path == "/v1/models" for r in server.requests)


async def test_build_provider_kinds() -> None:
    scripted = build_provider("scripted", None, None)
    default = build_provider("openai", None, "sk-x")
    local = build_provider("openai", "http://localhost:11434/v1/", None, name="ollama")

    assert isinstance(scripted, ScriptedProvider)
    assert isinstance(default, OpenAICompatibleProvider)
    assert default.base_url == OPENROUTER_BASE_URL
    assert isinstance(local, OpenAICompatibleProvider)
    assert (local.base_url, local.name) == ("http://localhost:11434/v1", "ollama")
    assert "sk-x" not in repr(default)
    await default.aclose()
    await local.aclose()
    with pytest.raises(ValueError):
        build_provider("anthropic", None, None)


async def test_cache_serves_within_ttl_and_refetches_after(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    clock = FakeClock()
    cache = ModelCache(ttl=60, clock=clock)
    providers = {"openrouter": provider}

    first = await available_models(providers, cache=cache)
    clock.now += 59
    second = await available_models(providers, cache=cache)
    assert first == second and len(first) == 2
    assert model_list_calls(openai_server) == 1

    clock.now += 2
    await available_models(providers, cache=cache)
    assert model_list_calls(openai_server) == 2


async def test_cache_info_clear_and_warm(openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider) -> None:
    clock = FakeClock()
    cache = ModelCache(ttl=300, clock=clock)
    providers = {"openrouter": provider}
    assert cache.info() == {"ttl_seconds": 300, "entries": {}}

    await available_models(providers, cache=cache)
    clock.now += 100
    assert cache.info()["entries"]["openrouter"] == {
        "models": 2,
        "age_seconds": 100.0,
        "expires_in_seconds": 200.0,
        "fresh": True,
    }

    assert cache.clear() == 1 and cache.info()["entries"] == {}
    await available_models(providers, cache=cache)
    assert model_list_calls(openai_server) == 2

    info = await cache.warm(providers)  # refreshes even though the entry is fresh
    assert model_list_calls(openai_server) == 3
    assert info["entries"]["openrouter"]["age_seconds"] == 0.0


async def test_merges_providers_and_names_models_by_provider_key(
    provider: OpenAICompatibleProvider,
) -> None:
    providers: dict[str, ModelProvider] = {"openrouter": provider, "offline": ScriptedProvider()}

    models = await available_models(providers, cache=ModelCache())

    assert [(m.provider, m.id) for m in models] == [
        ("openrouter", "openai/gpt-4o-mini"),
        ("openrouter", "anthropic/claude-sonnet-4"),
        ("offline", "runplane/scripted-agent"),
    ]


async def test_failing_provider_is_skipped_and_reported(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    cache = ModelCache()
    openai_server.fail_next(401)

    providers: dict[str, ModelProvider] = {"openrouter": provider, "offline": ScriptedProvider()}
    models = await available_models(providers, cache=cache)

    assert [m.provider for m in models] == ["offline"]
    assert cache.info()["entries"]["openrouter"]["last_error"].startswith("HTTP 401")


async def test_stale_list_is_served_while_provider_is_down(
    openai_server: FakeOpenAIServer, sleeps: SleepRecorder
) -> None:
    clock = FakeClock()
    cache = ModelCache(ttl=10, clock=clock)
    async with OpenAICompatibleProvider(openai_server.base_url, API_KEY, sleep=sleeps) as client:
        await cache.get("openrouter", client)
        clock.now += 11
        openai_server.fail_next(503, times=3)

        models = await cache.get("openrouter", client)

    assert len(models) == 2
    entry = cache.info()["entries"]["openrouter"]
    assert entry["fresh"] is False and "503" in entry["last_error"]


async def test_get_without_cached_list_raises(openai_server: FakeOpenAIServer) -> None:
    async with OpenAICompatibleProvider(openai_server.base_url, "sk-wrong") as client:
        with pytest.raises(ModelProviderError):
            await ModelCache().get("openrouter", client)
