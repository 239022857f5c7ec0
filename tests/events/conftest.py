"""Fixtures for the event transport: buses (in-memory and real Redis), a fake event log, and a
throwaway redis-server process that tests may kill and restart."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from runplane.events import EventBus, InMemoryEventBus, RedisEventBus
from tests.events.helpers import BusFactory, EventLog, RedisProcess, free_port

REDIS_URL = os.environ.get("RUNPLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> None:
    # In CI a missing Redis is a broken pipeline, not a reason to skip.
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis not reachable at {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def run_id() -> str:
    return f"test-{uuid.uuid4().hex}"


@pytest.fixture
def event_log(run_id: str) -> EventLog:
    return EventLog(run_id)


@pytest.fixture(params=["memory", "redis"])
async def bus_factory(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    kind: str = request.param
    url = request.getfixturevalue("redis_url") if kind == "redis" else ""
    made: list[EventBus] = []

    async def make(**kwargs: Any) -> EventBus:
        bus: EventBus
        if kind == "memory":
            bus = InMemoryEventBus(**kwargs)
        else:
            kwargs.setdefault("client_name", f"rp-test-{uuid.uuid4().hex[:10]}")
            bus = RedisEventBus(url, **kwargs)
        await bus.start()
        if isinstance(bus, RedisEventBus):
            assert await bus.wait_connected(5), "bus did not connect to Redis"
        made.append(bus)
        return bus

    yield make
    for bus in made:
        await bus.stop()


@pytest.fixture
async def bus(bus_factory: BusFactory) -> EventBus:
    bus: EventBus = await bus_factory()
    return bus


@pytest.fixture
def redis_process(tmp_path: Path) -> Iterator[RedisProcess]:
    if shutil.which("redis-server") is None:
        _unavailable("redis-server binary not found")
    server = RedisProcess(free_port(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill()
