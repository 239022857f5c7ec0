"""A `runplane serve` subprocess for the sandbox API tests: what production runs (uvloop, its own
process, settings from RUNPLANE_* variables). Tortoise allows one app per process, so the suite's
in-process server cannot be joined by a second one with other settings."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support import ROOMY_PLAN, database_url, drop_postgres_database, free_port, test_redis_url

ROOT = Path(__file__).resolve().parents[2]
# Small limits, so floods, time limits and fork bombs end fast.
MAX_UPLOAD = 256 * 1024
MAX_OUTPUT = 64 * 1024
LIMITS = {
    "SANDBOX_COMMAND_TIMEOUT": "20", "SANDBOX_CPU_SECONDS": "30", "SANDBOX_MAX_PROCESSES": "64",
    "SANDBOX_MAX_OUTPUT_BYTES": str(MAX_OUTPUT), "SANDBOX_MAX_UPLOAD_BYTES": str(MAX_UPLOAD), "SANDBOX_MAX_SESSIONS": "4",
    "RATE_LIMIT_PER_MINUTE": "100000", "RUN_STARTS_PER_MINUTE": "100000", "MAX_STREAMS_PER_USER": "1000", "RUN_QUEUE": "inprocess",
    "BILLING_DEFAULT_PLAN": ROOMY_PLAN,
}


@dataclass
class SandboxServer:
    base_url: str
    sandbox_dir: Path
    database_url: str
    log_path: Path

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/graphql"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def sandbox_uid(self, sandbox_id: str) -> int | None:
        """The uid a sandbox's commands run as (None unless the server runs as root)."""
        import json

        uid: int | None = json.loads((self.sandbox_dir / sandbox_id / "sandbox.json").read_text())["uid"]
        return uid

    async def query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Read the server's database directly (`$1` placeholders)."""
        if self.database_url.startswith("sqlite://"):
            with sqlite3.connect(self.database_url.removeprefix("sqlite://")) as conn:
                return list(conn.execute(sql.replace("$1", "?"), args).fetchall())
        import asyncpg

        conn = await asyncpg.connect(self.database_url.replace("postgres://", "postgresql://", 1))
        try:
            return [tuple(row) for row in await conn.fetch(sql, *args)]
        finally:
            await conn.close()


def reachable_dir(prefix: str) -> Path:
    """Not pytest's tmp_path: /tmp/pytest-of-root is 0700, so sandbox uids could not reach it."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o711)
    return path


@asynccontextmanager
async def sandbox_server(tmp: Path, **settings: str) -> AsyncIterator[SandboxServer]:
    """`settings` are RUNPLANE_* names without the prefix, over LIMITS."""
    url, pg_name = await database_url(tmp)
    sandbox_dir = reachable_dir("runplane-sbxapi-")
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("RUNPLANE_")}
    uid_start = 400_000 + random.randrange(0, 600) * 1_000  # apart from concurrent suites on this machine
    values = {**LIMITS, "DATA_DIR": str(tmp), "DATABASE_URL": url, "JWT_SECRET": "sandbox-secret-" + "y" * 40,
              "LOG_LEVEL": "WARNING", "SANDBOX_DIR": str(sandbox_dir), "SANDBOX_UID_START": str(uid_start),
              "SANDBOX_UID_COUNT": "1000", **({"REDIS_URL": redis} if (redis := test_redis_url()) else {}), **settings}
    env.update({f"RUNPLANE_{name}": value for name, value in values.items()}, PYTHONPATH=str(ROOT))
    log_path = tmp / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "runplane.cli", "serve", "--port", str(port)],
                                   cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = SandboxServer(f"http://127.0.0.1:{port}", sandbox_dir, url, log_path)
    try:
        await _wait_alive(server, process)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        import shutil

        shutil.rmtree(sandbox_dir, ignore_errors=True)
        if pg_name:
            await drop_postgres_database(pg_name)


async def _wait_alive(server: SandboxServer, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=server.base_url, timeout=2) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"runplane serve exited:\n{server.log()}")
            try:
                if (await http.get("/api/health/live")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"runplane serve did not start:\n{server.log()}")
