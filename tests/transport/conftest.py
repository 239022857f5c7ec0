"""A `runplane serve` configured as a browser app's backend: one allowed CORS origin (RUNPLANE_CORS_ORIGINS)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.spawned import Process, spawn_server
from tests.support import UserHandle, register_user

APP_ORIGIN = "http://localhost:5173"


@pytest.fixture(scope="session")
async def browser_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Process]:
    settings = {"cors_origins": APP_ORIGIN, "rate_limit_per_minute": 100_000, "max_streams_per_user": 1_000}
    async with spawn_server(tmp_path_factory.mktemp("browser"), settings, name="browser") as proc:
        yield proc


@pytest.fixture
async def http(browser_server: Process) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=browser_server.base_url, timeout=30) as client:
        yield client


@pytest.fixture
async def user(http: httpx.AsyncClient) -> UserHandle:
    return await register_user(http)
