"""Migrations keep the rows of an existing database. Each check runs in its own process (Tortoise's migrate()
initialises the process-wide ORM state, which the session server of other test modules owns), on the database
kind of the pass (SQLite or PostgreSQL, tests/support.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tortoise import Tortoise, connections
from tortoise.migrations.api import migrate

from runplane.config import tortoise_config
from runplane.models import AgentRun
from runplane.statuses import RunStatus
from tests.factories import create_run
from tests.support import database_url, drop_postgres_database

ROOT = Path(__file__).resolve().parents[1]
BEFORE_COMPLETED_AT = "runplane.0008_project_app_type"


def test_renaming_finished_at_to_completed_at_keeps_each_runs_end(tmp_path: Path) -> None:
    url, pg_name = asyncio.run(database_url(tmp_path))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "tests.test_migrations", url],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        if pg_name:
            asyncio.run(drop_postgres_database(pg_name))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "kept", done.stdout


async def _completed_at_survives_the_rename(url: str) -> None:
    """A run ended before 0009 (its end in `finished_at`) has the same end in `completed_at` after it; undoing 0009
    puts it back."""
    config = tortoise_config(url)
    run = await _at_latest(config, lambda: create_run(RunStatus.COMPLETED, log=False))
    await migrate(config=config, target=BEFORE_COMPLETED_AT)
    await Tortoise.init(config=config)
    rows = await connections.get("default").execute_query_dict("SELECT finished_at FROM agent_runs")
    await Tortoise.close_connections()
    assert len(rows) == 1 and rows[0]["finished_at"] is not None, rows
    again = await _at_latest(config, lambda: AgentRun.get(id=run.id))
    assert run.completed_at is not None and again.completed_at == run.completed_at, (run.completed_at, again)
    print("kept")


async def _at_latest(config: dict[str, Any], operation: Callable[[], Awaitable[AgentRun]]) -> AgentRun:
    await migrate(config=config)
    await Tortoise.init(config=config)
    try:
        return await operation()
    finally:
        await Tortoise.close_connections()


if __name__ == "__main__":
    asyncio.run(_completed_at_survives_the_rename(sys.argv[1]))
