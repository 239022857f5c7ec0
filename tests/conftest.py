from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from runplane.config import Settings
from tests.support import (
    ROOMY_PLAN,
    LiveServer,
    UserHandle,
    database_url,
    drop_postgres_database,
    register_user,
    start_server,
    test_redis_url,
)

ADMIN_API_KEY = "test-admin-key-0123456789"


@pytest.fixture(scope="session")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveServer]:
    """One real server for the session (uvicorn on a free port, migrations applied at start-up)."""
    tmp = tmp_path_factory.mktemp("runplane")
    url, pg_name = await database_url(tmp)
    settings = Settings(
        data_dir=tmp,
        database_url=url,
        redis_url=test_redis_url(),
        jwt_secret="test-secret-" + "x" * 40,
        admin_api_key=ADMIN_API_KEY,
        # Runs execute in this process: with Redis configured, "auto" would queue them on arq, and no
        # worker runs beside the session server (tests/runs starts real workers where it needs them).
        run_queue="inprocess",
        # Per-user limits high enough never to throttle the suite; tests/runs checks the real defaults.
        rate_limit_per_minute=100_000,
        run_starts_per_minute=100_000,
        max_streams_per_user=1_000,
        # New users start on a plan without project or deployment caps: many tests create several of each.
        # Tests of the caps move their user to the free plan (tests/billing/test_limits.py).
        billing_default_plan=ROOMY_PLAN,
        # Every test registers users from 127.0.0.1; tests/auth/test_abuse_limits.py checks the default.
        registrations_per_hour=0,
    ).resolved()
    live = await start_server(settings)
    yield live
    await live.stop()
    if pg_name:
        await drop_postgres_database(pg_name)


@pytest.fixture
async def client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        yield http


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> UserHandle:
    return await register_user(client)


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> UserHandle:
    return await register_user(client)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path
