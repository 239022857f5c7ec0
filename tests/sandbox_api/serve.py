"""A `runplane serve` subprocess for the sandbox API tests: what production runs (uvloop, its own
process, settings from RUNPLANE_* variables). Tortoise allows one app per process, so the suite's
in-process server cannot be joined by a second one with other settings."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runplane.sandboxes import egress, netns
from tests.spawned import Process, reachable_dir, spawn_server
from tests.support import test_redis_url

__all__ = ["LIMITS", "MAX_OUTPUT", "MAX_UPLOAD", "SandboxServer", "reachable_dir", "sandbox_server"]

# Small limits, so floods, time limits and fork bombs end fast.
MAX_UPLOAD = 256 * 1024
MAX_OUTPUT = 64 * 1024
LIMITS = {
    "SANDBOX_COMMAND_TIMEOUT": "20",
    "SANDBOX_CPU_SECONDS": "30",
    "SANDBOX_MAX_PROCESSES": "64",
    "SANDBOX_MAX_OUTPUT_BYTES": str(MAX_OUTPUT),
    "SANDBOX_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
    "SANDBOX_MAX_SESSIONS": "4",
    "RATE_LIMIT_PER_MINUTE": "100000",
    "RUN_STARTS_PER_MINUTE": "100000",
    "MAX_STREAMS_PER_USER": "1000",
    "RUN_QUEUE": "inprocess",
}


@dataclass
class SandboxServer:
    process: Process
    sandbox_dir: Path

    @property
    def base_url(self) -> str:
        return self.process.base_url

    @property
    def ws_url(self) -> str:
        return self.process.ws_url

    @property
    def database_url(self) -> str:
        return self.process.env["RUNPLANE_DATABASE_URL"]

    def log(self) -> str:
        return self.process.log()

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


@asynccontextmanager
async def sandbox_server(tmp: Path, **settings: str) -> AsyncIterator[SandboxServer]:
    """`settings` are RUNPLANE_* names without the prefix, over LIMITS."""
    sandbox_dir = reachable_dir("runplane-sbxapi-")
    uid_start = 400_000 + random.randrange(0, 600) * 1_000  # apart from concurrent suites on this machine
    try:
        values = {
            **LIMITS,
            "SANDBOX_DIR": str(sandbox_dir),
            "SANDBOX_UID_START": str(uid_start),
            "SANDBOX_UID_COUNT": "1000",
            "REDIS_URL": test_redis_url(),
            **settings,
        }
        async with spawn_server(tmp, values, name="sandbox-api", health="live") as process:
            yield SandboxServer(process, sandbox_dir)
    finally:
        netns.unmount_under(sandbox_dir)  # the sandboxes' network namespaces stay mounted after the server
        shutil.rmtree(sandbox_dir, ignore_errors=True)
        forget_uid_range(range(uid_start, uid_start + 1000))


def forget_uid_range(uids: range) -> None:
    """The server added a firewall rule for its uid range (runplane/sandboxes/egress.py) and left it, as
    runplane does: take it away, or every test run would leave one more on this machine."""
    if os.geteuid() == 0:
        with contextlib.suppress(egress.EgressError):
            egress.remove_uid_range(uids)
