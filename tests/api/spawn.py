"""A second runplane server with its own settings, as a `runplane serve` subprocess (tests/spawned.py).

Tortoise keeps one process-wide fallback context, so a second app cannot share the test process.
Settings reach the subprocess as RUNPLANE_* variables, exactly as in production.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from tests.spawned import Process, spawn_server

SpawnedServer = Process


@asynccontextmanager
async def spawned_server(tmp: Path, **settings: str) -> AsyncIterator[SpawnedServer]:
    """`settings` are RUNPLANE_* names without the prefix: spawned_server(tmp, REDIS_URL="redis://...").
    Liveness, not readiness: some of these servers are meant to run with a dependency down."""
    async with spawn_server(tmp, settings, name="spawned", health="live") as server:
        yield server
