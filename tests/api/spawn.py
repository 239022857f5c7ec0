"""A second runplane server with its own settings, as a `runplane serve` subprocess.

Tortoise keeps one process-wide fallback context, so a second app cannot share the test process
(see tests/auth/conftest.py). Settings reach the subprocess as RUNPLANE_* variables, exactly as in
production.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import ROOMY_PLAN, database_url, drop_postgres_database, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SpawnedServer:
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@asynccontextmanager
async def spawned_server(tmp: Path, **settings: str) -> AsyncIterator[SpawnedServer]:
    """`settings` are RUNPLANE_* names without the prefix: spawned_server(tmp, REDIS_URL="redis://...")."""
    url, pg_name = await database_url(tmp)
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNPLANE_")}
    env.update(
        PYTHONPATH=str(ROOT), RUNPLANE_DATA_DIR=str(tmp), RUNPLANE_DATABASE_URL=url,
        RUNPLANE_JWT_SECRET="spawned-test-secret-" + "s" * 40, RUNPLANE_LOG_LEVEL="WARNING",
        RUNPLANE_BILLING_DEFAULT_PLAN=ROOMY_PLAN,
    )
    env.update({f"RUNPLANE_{name}": value for name, value in settings.items()})
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "runplane.cli", "serve", "--port", str(port)],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    server = SpawnedServer(f"http://127.0.0.1:{port}", log_path)
    try:
        await _wait_alive(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if pg_name:
            await drop_postgres_database(pg_name)


async def _wait_alive(server: SpawnedServer, process: subprocess.Popen[bytes]) -> None:
    """Liveness, not readiness: some of these servers are meant to run with a dependency down."""
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"spawned server exited:\n{server.log()}")
            try:
                if (await http.get("/api/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"spawned server did not start:\n{server.log()}")
