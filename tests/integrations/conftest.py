"""A runplane server with Composio, SMTP, feature flags and Vercel pointing at local fakes (a subprocess:
Tortoise keeps one context per process). The session server (tests/conftest.py) has none of them configured."""

from __future__ import annotations

import json
import random
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.spawn import SpawnedServer, spawned_server
from tests.conftest import ADMIN_API_KEY
from tests.fakes.composio_server import FakeComposioServer
from tests.fakes.smtp_server import FakeSMTPServer
from tests.fakes.vercel_server import FakeVercelServer
from tests.sandbox_api.serve import reachable_dir

COMPOSIO_KEY = "composio-test-key"
VERCEL_TOKEN = "vercel-test-token"
SMTP_USER, SMTP_PASSWORD = "mailer", "mail-secret"
FLAGS = {"custom_agents": True, "mobile_preview": {"enabled": False, "description": "Expo previews"}}


@dataclass
class Configured:
    server: SpawnedServer
    composio: FakeComposioServer
    smtp: FakeSMTPServer
    vercel: FakeVercelServer

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="session")
async def configured(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Configured]:
    composio = await FakeComposioServer(api_key=COMPOSIO_KEY).start()
    vercel = await FakeVercelServer(token=VERCEL_TOKEN, ready_after=2).start()
    smtp = FakeSMTPServer(username=SMTP_USER, password=SMTP_PASSWORD).start()
    sandbox_dir = reachable_dir("runplane-integrations-")  # deployments read the project's sandbox
    settings = dict(
        ADMIN_API_KEY=ADMIN_API_KEY,
        RUN_QUEUE="inprocess",
        RATE_LIMIT_PER_MINUTE="100000",
        COMPOSIO_BASE_URL=composio.base_url,
        COMPOSIO_API_KEY=COMPOSIO_KEY,
        COMPOSIO_CACHE_SECONDS="60",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp.port),
        SMTP_USERNAME=SMTP_USER,
        SMTP_PASSWORD=SMTP_PASSWORD,
        SMTP_FROM="runplane <hello@runplane.test>",
        SMTP_SECURITY="none",
        FEATURE_FLAGS_ENABLED="true",
        FEATURE_FLAGS=json.dumps(FLAGS),
        SANDBOX_DIR=str(sandbox_dir),
        SANDBOX_UID_START=str(600_000 + random.randrange(0, 300) * 1_000),
        SANDBOX_UID_COUNT="1000",
        VERCEL_API_URL=vercel.base_url,
        VERCEL_TOKEN=VERCEL_TOKEN,
        VERCEL_TEAM_ID="team_runplane",
    )
    try:
        async with spawned_server(tmp_path_factory.mktemp("runplane-integrations"), **settings) as server:
            yield Configured(server, composio, smtp, vercel)
    finally:
        smtp.stop()
        shutil.rmtree(sandbox_dir, ignore_errors=True)
        await composio.stop()
        await vercel.stop()


@pytest.fixture
async def cclient(configured: Configured) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=configured.base_url, timeout=30) as http:
        yield http
