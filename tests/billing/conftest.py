"""A runplane server configured for billing: tiny free allowance, Polar and Stripe pointing at local fakes,
webhook secrets, and a fake OpenAI-compatible server that only accepts the test user's own key.

It runs as its own process (`runplane serve`), like tests/auth's external-issuer server: Tortoise keeps one
process-wide context, so a second app cannot share the test process. Runs execute in that process.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_API_KEY
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.polar_server import FakePolarServer
from tests.fakes.stripe_server import FakeStripeServer
from tests.spawned import Process, spawn_server
from tests.support import UserHandle, test_redis_url

POLAR_TOKEN = "polar_oat_runplane_tests"
POLAR_SECRET = "whsec_" + base64.b64encode(b"polar webhook secret for runplane tests").decode()
STRIPE_KEY = "sk_test_runplane_0123456789"
STRIPE_SECRET = "whsec_stripe_runplane_tests"
USER_MODEL_KEY = "sk-or-v1-" + "a1b2c3d4" * 8
FREE_TOKENS = 5
PLANS: list[dict[str, Any]] = [
    {"id": "free", "name": "Free", "token_allowance": FREE_TOKENS, "max_projects": 3, "max_deployments": 1},
    {
        "id": "pro",
        "name": "Pro",
        "price_cents": 2000,
        "token_allowance": 1_000_000,
        "max_projects": 50,
        "polar_id": "prod_pro",
        "stripe_id": "price_pro",
    },
    {
        "id": "premium",
        "name": "Premium",
        "price_cents": 5000,
        "token_allowance": None,
        "polar_id": "prod_premium",
        "stripe_id": "price_premium",
    },
    {"id": "byok", "name": "BYOK", "price_cents": 1000, "token_allowance": 0, "byok": True, "stripe_id": "price_byok"},
]
SUCCESS_URL = "https://app.runplane.test/billing/success"


@dataclass
class BillingServer:
    process: Process
    polar: FakePolarServer
    stripe: FakeStripeServer
    model: FakeOpenAIServer

    def webhook_url(self, provider: str) -> str:
        return f"{self.process.base_url}/api/webhooks/{provider}"


@pytest.fixture(scope="session")
async def polar() -> AsyncIterator[FakePolarServer]:
    server = FakePolarServer(token=POLAR_TOKEN, webhook_secret=POLAR_SECRET, products={"prod_pro", "prod_premium"})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def stripe() -> AsyncIterator[FakeStripeServer]:
    server = FakeStripeServer(
        secret_key=STRIPE_KEY, webhook_secret=STRIPE_SECRET, prices={"price_pro", "price_premium", "price_byok"}
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def model_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(api_key=USER_MODEL_KEY) as server:
        yield server


@pytest.fixture(scope="session")
async def billing(
    tmp_path_factory: pytest.TempPathFactory,
    polar: FakePolarServer,
    stripe: FakeStripeServer,
    model_server: FakeOpenAIServer,
) -> AsyncIterator[BillingServer]:
    settings = dict(
        ADMIN_API_KEY=ADMIN_API_KEY,
        RUN_QUEUE="inprocess",
        RUN_STARTS_PER_MINUTE="1000",
        BILLING_PLANS=json.dumps(PLANS),
        BILLING_PERIOD_DAYS="30",
        BILLING_DEFAULT_PLAN=None,  # the built-in default: free
        POLAR_API_URL=polar.base_url,
        POLAR_ACCESS_TOKEN=POLAR_TOKEN,
        POLAR_WEBHOOK_SECRET=POLAR_SECRET,
        STRIPE_API_URL=stripe.base_url,
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
        BILLING_PROVIDER="polar",
        MODEL_BASE_URL=model_server.base_url,
        MODEL_API_KEY="sk-platform-not-accepted",
        REDIS_URL=test_redis_url(),
    )
    async with spawn_server(tmp_path_factory.mktemp("runplane-billing"), settings, name="billing") as process:
        yield BillingServer(process, polar, stripe, model_server)


@pytest.fixture
async def bclient(billing: BillingServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=billing.process.base_url, timeout=30) as http:
        yield http


async def make_thread(client: httpx.AsyncClient, user: UserHandle) -> str:
    project = (await client.post("/api/projects", json={"name": "billing"}, headers=user.headers)).json()
    thread = await client.post("/api/threads", json={"project_id": project["project_id"]}, headers=user.headers)
    return str(thread.json()["thread_id"])


async def run_to_end(client: httpx.AsyncClient, user: UserHandle, thread_id: str, **body: Any) -> dict[str, Any]:
    """Start a run and poll until it ends; returns the run's details."""
    started = await client.post(
        f"/api/thread/{thread_id}/agent/start", json={"prompt": "hello there", **body}, headers=user.headers
    )
    assert started.status_code == 200, started.text
    return await wait_finished(client, user, started.json()["agent_run_id"])


async def wait_finished(client: httpx.AsyncClient, user: UserHandle, run_id: str) -> dict[str, Any]:
    """Poll a run until it ends (up to 20 s); returns its details."""
    for _ in range(400):
        run = (await client.get(f"/api/agent-run/{run_id}", headers=user.headers)).json()
        if run["status"] in ("completed", "failed", "stopped"):
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def status_of(client: httpx.AsyncClient, user: UserHandle) -> dict[str, Any]:
    response = await client.get("/api/billing/status", headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())
