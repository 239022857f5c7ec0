"""Health probes: basic, deep (database and Redis), readiness and liveness, also with Redis down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.api.spawn import SpawnedServer, spawned_server
from tests.support import LiveServer, free_port

PROBES = ["/api/health", "/api/health/deep", "/api/health/ready", "/api/health/live"]


def assert_basic_fields(body: dict[str, object]) -> None:
    assert isinstance(body["instance_id"], str) and body["instance_id"]
    stamp = body["timestamp"]
    assert isinstance(stamp, str) and stamp.endswith("Z")
    age = datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(age.total_seconds()) < 60


async def test_basic_health_reports_status_time_and_instance(client: httpx.AsyncClient, server: LiveServer) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["instance_id"] == server.settings.instance_id
    assert_basic_fields(body)


async def test_deep_health_checks_the_database_and_redis(client: httpx.AsyncClient, server: LiveServer) -> None:
    response = await client.get("/api/health/deep")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "healthy"
    assert_basic_fields(body)
    database = body["components"]["database"]
    assert database["status"] == "ok" and database["critical"] is True
    assert isinstance(database["latency_ms"], (int, float))
    redis = body["components"]["redis"]
    if server.settings.redis_url:
        assert redis["status"] == "ok" and redis["critical"] is True
    else:
        assert redis == {"status": "not_configured", "critical": False}


async def test_probes_need_no_credentials_and_ignore_bad_ones(client: httpx.AsyncClient) -> None:
    for path in PROBES:
        for headers in ({}, {"Authorization": "Bearer garbage"}, {"X-API-Key": "wrong"}):
            response = await client.get(path, headers=headers)
            assert response.status_code == 200, (path, headers, response.text)


async def test_ready_and_live(client: httpx.AsyncClient) -> None:
    ready = await client.get("/api/health/ready")
    live = await client.get("/api/health/live")
    assert (ready.status_code, ready.json()["status"]) == (200, "ready")
    assert (live.status_code, live.json()["status"]) == (200, "alive")
    assert_basic_fields(ready.json())
    assert_basic_fields(live.json())


async def test_head_requests_answer_like_get(client: httpx.AsyncClient) -> None:
    response = await client.head("/api/health/live")
    assert response.status_code == 200 and response.content == b""


# --- Redis configured but unreachable ---------------------------------------------------------------


@pytest.fixture(scope="module")
async def redis_refused(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SpawnedServer]:
    """Redis configured on a port where nothing listens: connections are refused at once."""
    tmp = tmp_path_factory.mktemp("redis-refused")
    async with spawned_server(tmp, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0") as spawned:
        yield spawned


async def test_deep_health_is_503_fast_when_redis_refuses(redis_refused: SpawnedServer) -> None:
    async with httpx.AsyncClient(base_url=redis_refused.base_url, timeout=10) as http:
        started = time.monotonic()
        deep = await http.get("/api/health/deep")
        elapsed = time.monotonic() - started
        assert deep.status_code == 503, deep.text
        assert elapsed < 3, elapsed
        body = deep.json()
        assert body["status"] == "unhealthy"
        assert body["components"]["database"]["status"] == "ok"
        assert body["components"]["redis"]["status"] == "down"
        assert body["components"]["redis"]["critical"] is True
        assert (await http.get("/api/health/ready")).status_code == 503
        assert (await http.get("/api/health/live")).status_code == 200
        assert (await http.get("/api/health")).status_code == 200


async def test_deep_health_is_503_within_the_check_timeout_when_redis_hangs(tmp_path: Path) -> None:
    """A Redis that accepts the connection and never answers: the probe must not hang with it."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(65536):
                pass
        finally:
            writer.close()

    blackhole = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = blackhole.sockets[0].getsockname()[1]
    try:
        async with spawned_server(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0") as spawned:
            async with httpx.AsyncClient(base_url=spawned.base_url, timeout=20) as http:
                started = time.monotonic()
                deep, live = await asyncio.gather(http.get("/api/health/deep"), http.get("/api/health/live"))
                elapsed = time.monotonic() - started
                assert live.status_code == 200
                assert deep.status_code == 503, deep.text
                assert deep.json()["components"]["redis"]["status"] == "down"
                assert elapsed < 5, elapsed  # resolvers/health.py gives each check 2 s
    finally:
        blackhole.close()
        await blackhole.wait_closed()
