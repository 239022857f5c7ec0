"""Fixtures for the provider tests: a real local OpenAI-compatible server and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runplane.agents.providers import OpenAICompatibleProvider
from tests.agents.provider_support import API_KEY, SleepRecorder
from tests.fakes.openai_server import FakeOpenAIServer


@pytest.fixture
async def openai_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def provider(openai_server: FakeOpenAIServer, sleeps: SleepRecorder) -> AsyncIterator[OpenAICompatibleProvider]:
    async with OpenAICompatibleProvider(
        openai_server.base_url,
        API_KEY,
        timeout=5.0,
        name="openrouter",
        sleep=sleeps,
        default_headers={"X-Title": "runplane-tests"},
    ) as client:
        yield client
