"""A second runplane server that also trusts an external issuer (a fake Clerk with a real JWKS endpoint).

It runs as its own process (`runplane serve`): Tortoise keeps one process-wide fallback context,
so two runplane apps cannot share the test process (the second start-up fails with
"Global context fallback is already enabled"). A subprocess is also what production runs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.jwks_server import FakeJWKSServer
from tests.support import ROOMY_PLAN, database_url, drop_postgres_database, free_port

ROOT = Path(__file__).resolve().parents[2]
EXTERNAL_ISSUER = "https://clerk.runplane.test"
EXTERNAL_AUDIENCE = "runplane-web"


@dataclass
class ExternalServer:
    base_url: str
    idp: FakeJWKSServer
    log_path: Path


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeJWKSServer]:
    with FakeJWKSServer(issuer=EXTERNAL_ISSUER, audience=EXTERNAL_AUDIENCE) as server:
        yield server


@pytest.fixture(scope="module")
async def external(idp: FakeJWKSServer, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ExternalServer]:
    tmp = tmp_path_factory.mktemp("runplane-external")
    url, pg_name = await database_url(tmp)
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNPLANE_")}
    env.update(
        PYTHONPATH=str(ROOT),
        RUNPLANE_DATA_DIR=str(tmp),
        RUNPLANE_DATABASE_URL=url,
        RUNPLANE_JWT_SECRET="external-test-secret-" + "z" * 40,
        RUNPLANE_EXTERNAL_JWKS_URL=idp.jwks_url,
        RUNPLANE_EXTERNAL_ISSUER=EXTERNAL_ISSUER,
        RUNPLANE_EXTERNAL_AUDIENCE=EXTERNAL_AUDIENCE,
        RUNPLANE_LOG_LEVEL="WARNING",
        RUNPLANE_BILLING_DEFAULT_PLAN=ROOMY_PLAN,
    )
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runplane.cli", "serve", "--port", str(port),
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(base_url, process, log_path)
        yield ExternalServer(base_url, idp, log_path)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
        if pg_name:
            await drop_postgres_database(pg_name)
    # Every rejection above must have been a handled 4xx: an unhandled error leaves a traceback here.
    assert "Traceback" not in log_path.read_text(), log_path.read_text()


async def _wait_ready(base_url: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"external-issuer server exited:\n{log_path.read_text()}")
            try:
                if (await http.get("/api/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"external-issuer server did not become ready:\n{log_path.read_text()}")


@pytest.fixture
async def ext_client(external: ExternalServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=external.base_url, timeout=30) as http:
        yield http
