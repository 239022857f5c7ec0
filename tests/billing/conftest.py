"""A runplane server configured for billing: tiny free allowance, Polar and Stripe pointing at local fakes,
webhook secrets, and a fake OpenAI-compatible server that only accepts the test user's own key.

It runs as its own process (`runplane serve`), like tests/auth's external-issuer server: Tortoise keeps one
process-wide context, so a second app cannot share the test process. Runs execute in that process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_API_KEY
from tests.fakes.openai_server import FakeOpenAIServer
from tests.fakes.polar_server import FakePolarServer
from tests.fakes.stripe_server import FakeStripeServer
from tests.support import UserHandle, database_url, drop_postgres_database, free_port, test_redis_url

ROOT = Path(__file__).resolve().parents[2]
POLAR_TOKEN = "polar_oat_runplane_tests"
POLAR_SECRET = "whsec_" + base64.b64encode(b"polar webhook secret for runplane tests").decode()
STRIPE_KEY = "sk_test_runplane_0123456789"
STRIPE_SECRET = "whsec_stripe_runplane_tests"
USER_MODEL_KEY = "sk-or-v1-" + "a1b2c3d4" * 8
FREE_TOKENS = 5
PLANS: list[dict[str, Any]] = [
    {"id": "free", "name": "Free", "token_allowance": FREE_TOKENS, "max_projects": 3, "max_deployments": 1},
    {"id": "pro", "name": "Pro", "price_cents": 2000, "token_allowance": 1_000_000, "max_projects": 50,
     "polar_id": "prod_pro", "stripe_id": "price_pro"},
    {"id": "premium", "name": "Premium", "price_cents": 5000, "token_allowance": None, "polar_id": "prod_premium", "stripe_id": "price_premium"},
    {"id": "byok", "name": "BYOK", "price_cents": 1000, "token_allowance": 0, "byok": True, "stripe_id": "price_byok"},
]
SUCCESS_URL = "https://app.runplane.test/billing/success"


@dataclass
class BillingServer:
    base_url: str
    polar: FakePolarServer
    stripe: FakeStripeServer
    model: FakeOpenAIServer
    log_path: Path

    def webhook_url(self, provider: str) -> str:
        return f"{self.base_url}/api/webhooks/{provider}"


@pytest.fixture(scope="session")
async def polar() -> AsyncIterator[FakePolarServer]:
    server = FakePolarServer(token=POLAR_TOKEN, webhook_secret=POLAR_SECRET, products={"prod_pro", "prod_premium"})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def stripe() -> AsyncIterator[FakeStripeServer]:
    server = FakeStripeServer(secret_key=STRIPE_KEY, webhook_secret=STRIPE_SECRET, prices={"price_pro", "price_premium", "price_byok"})
    await server.start()
    yield server
    await server.stop()


@pytest.fixture(scope="session")
async def model_server() -> AsyncIterator[FakeOpenAIServer]:
    async with FakeOpenAIServer(api_key=USER_MODEL_KEY) as server:
        yield server


@pytest.fixture(scope="session")
async def billing(
    tmp_path_factory: pytest.TempPathFactory, polar: FakePolarServer, stripe: FakeStripeServer, model_server: FakeOpenAIServer
) -> AsyncIterator[BillingServer]:
    tmp = tmp_path_factory.mktemp("runplane-billing")
    url, pg_name = await database_url(tmp)
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNPLANE_")}
    env.update(
        PYTHONPATH=str(ROOT), RUNPLANE_DATA_DIR=str(tmp), RUNPLANE_DATABASE_URL=url, RUNPLANE_LOG_LEVEL="WARNING",
        RUNPLANE_JWT_SECRET="billing-test-secret-" + "b" * 40, RUNPLANE_ADMIN_API_KEY=ADMIN_API_KEY,
        RUNPLANE_RUN_QUEUE="inprocess", RUNPLANE_RUN_STARTS_PER_MINUTE="1000",
        RUNPLANE_BILLING_PLANS=json.dumps(PLANS), RUNPLANE_BILLING_PERIOD_DAYS="30",
        RUNPLANE_POLAR_API_URL=polar.base_url, RUNPLANE_POLAR_ACCESS_TOKEN=POLAR_TOKEN, RUNPLANE_POLAR_WEBHOOK_SECRET=POLAR_SECRET,
        RUNPLANE_STRIPE_API_URL=stripe.base_url, RUNPLANE_STRIPE_SECRET_KEY=STRIPE_KEY, RUNPLANE_STRIPE_WEBHOOK_SECRET=STRIPE_SECRET,
        RUNPLANE_BILLING_PROVIDER="polar", RUNPLANE_MODEL_BASE_URL=model_server.base_url, RUNPLANE_MODEL_API_KEY="sk-platform-not-accepted",
    )
    if redis_url := test_redis_url():
        env["RUNPLANE_REDIS_URL"] = redis_url
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "runplane.cli", "serve", "--port", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(base_url, process, log_path)
        yield BillingServer(base_url, polar, stripe, model_server, log_path)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if pg_name:
            await drop_postgres_database(pg_name)


async def _wait_ready(base_url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"billing server exited:\n{log_path.read_text()}")
            try:
                if (await http.get("/api/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"billing server did not become ready:\n{log_path.read_text()}")


@pytest.fixture
async def bclient(billing: BillingServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=billing.base_url, timeout=30) as http:
        yield http


async def make_thread(client: httpx.AsyncClient, user: UserHandle) -> str:
    project = (await client.post("/api/projects", json={"name": "billing"}, headers=user.headers)).json()
    thread = await client.post("/api/threads", json={"project_id": project["project_id"]}, headers=user.headers)
    return str(thread.json()["thread_id"])


async def run_to_end(client: httpx.AsyncClient, user: UserHandle, thread_id: str, **body: Any) -> dict[str, Any]:
    """Start a run and poll until it ends; returns the run's details."""
    started = await client.post(f"/api/thread/{thread_id}/agent/start", json={"prompt": "hello there", **body}, headers=user.headers)
    assert started.status_code == 200, started.text
    run_id = started.json()["agent_run_id"]
    for _ in range(300):
        run = (await client.get(f"/api/agent-run/{run_id}", headers=user.headers)).json()
        if run["status"] in ("completed", "failed", "stopped"):
            return dict(run)
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} did not finish")


async def status_of(client: httpx.AsyncClient, user: UserHandle) -> dict[str, Any]:
    response = await client.get("/api/billing/status", headers=user.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())
