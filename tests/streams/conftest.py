"""The stream tests talk to a `runplane serve` of their own (`limited`): the default per-user limits (60
requests/min, 4 concurrent streams), sandboxes, a scripted agent streaming one word per 0.05 s, short SSE
heartbeats and a one-second session recheck. It uses the pass's database and Redis, so the PostgreSQL pass
holds the stream leases in Redis and the SQLite pass in the server's memory. Each test registers its own users."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.spawned import Process, reachable_dir, spawn_server
from tests.support import UserHandle, register_user, test_redis_url

RECHECK_SECONDS = 1.0


@pytest.fixture(scope="package")
async def limited(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Process]:
    sandboxes = reachable_dir("runplane-streams-sbx-")
    settings = dict(
        redis_url=test_redis_url(),
        run_queue="inprocess",
        sandbox_dir=sandboxes,
        sse_heartbeat_seconds=0.5,
        scripted_chunk_delay=0.05,
        session_recheck_seconds=RECHECK_SECONDS,
    )
    try:
        async with spawn_server(tmp_path_factory.mktemp("limited"), settings, name="limited") as proc:
            yield proc
    finally:
        shutil.rmtree(sandboxes, ignore_errors=True)


@pytest.fixture
async def http(limited: Process) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=limited.base_url, timeout=30) as client:
        yield client


@pytest.fixture
async def user(http: httpx.AsyncClient) -> UserHandle:
    return await register_user(http)
