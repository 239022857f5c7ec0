"""Fixtures of the run tests.

`tuned`: one `runplane serve` subprocess for the session (runs execute in it) with the settings the session
server cannot have: the DEFAULT rate limits (60 requests/min, 6 starts/min, 4 streams per user), 0.3 s SSE
heartbeats, a scripted agent that streams one word per 0.07 s (a reply lasts ~2 s: long enough to pause,
stop or drop a connection mid-run), and the OpenAI-compatible provider pointed at the fake server. Like the
session server it uses the pass's database and Redis (RUNPLANE_TEST_DATABASE, RUNPLANE_TEST_REDIS_URL), so
the PostgreSQL pass checks rate-limit counters and the event bus in Redis too. Each test registers its own
users there, so per-user limits never leak between tests.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.openai_server import FakeOpenAIServer
from tests.spawned import Process, reachable_dir, spawn_server
from tests.support import UserHandle, register_user, test_redis_url

FAKE_OPENAI_KEY = "sk-fake-runplane-tests"
TUNED_HEARTBEAT = 0.3
TUNED_CHUNK_DELAY = 0.07
TUNED_MAX_UPLOAD = 4096  # bytes one write_file may store: small, so a test can hit the limit


@pytest.fixture(scope="session")
async def fake_openai() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(api_key=FAKE_OPENAI_KEY) as fake:
        yield fake


@pytest.fixture(scope="session")
async def tuned(tmp_path_factory: pytest.TempPathFactory, fake_openai: FakeOpenAIServer) -> AsyncIterator[Process]:
    sandboxes = reachable_dir("runplane-runs-sbx-")  # as root, sandbox commands run as other uids that must reach it
    settings = dict(
        redis_url=test_redis_url(),
        run_queue="inprocess",
        sandbox_dir=sandboxes,
        sandbox_max_upload_bytes=TUNED_MAX_UPLOAD,
        sse_heartbeat_seconds=TUNED_HEARTBEAT,
        scripted_chunk_delay=TUNED_CHUNK_DELAY,
        model_provider="openai",
        model_base_url=fake_openai.base_url,
        model_api_key=FAKE_OPENAI_KEY,
    )
    try:
        async with spawn_server(tmp_path_factory.mktemp("tuned"), settings, name="tuned") as proc:
            yield proc
    finally:
        shutil.rmtree(sandboxes, ignore_errors=True)


@pytest.fixture
async def tuned_client(tuned: Process) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tuned.base_url, timeout=30) as http:
        yield http


@pytest.fixture
async def carol(tuned_client: httpx.AsyncClient) -> UserHandle:
    """A fresh user of the tuned server."""
    return await register_user(tuned_client)


@pytest.fixture
async def dave(tuned_client: httpx.AsyncClient) -> UserHandle:
    return await register_user(tuned_client)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
