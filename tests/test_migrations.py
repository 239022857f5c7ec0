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

import pytest
from tortoise import Tortoise, connections
from tortoise.exceptions import IntegrityError
from tortoise.migrations.api import migrate

from runplane.config import tortoise_config
from runplane.events.log import append_event
from runplane.models import AgentRun, RunEvent
from runplane.statuses import RunStatus
from tests.factories import create_run
from tests.support import database_url, drop_postgres_database

ROOT = Path(__file__).resolve().parents[1]
BEFORE_THE_RENAMES = "runplane.0008_project_app_type"  # 0009 finished_at, 0012 seq


def test_the_renamed_columns_keep_their_values(tmp_path: Path) -> None:
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


async def _renames_keep_the_values(url: str) -> None:
    """A run ended, with events, before 0009 and 0012 (its end in `finished_at`, its events numbered in `seq`) has the
    same end in `completed_at` and the same numbers in `sequence` after them, still unique per run; undoing them puts
    the values back."""
    config = tortoise_config(url)
    run = await _at_latest(config, _ended_run_with_events)
    await migrate(config=config, target=BEFORE_THE_RENAMES)
    await Tortoise.init(config=config)
    ends = await connections.get("default").execute_query_dict("SELECT finished_at FROM agent_runs")
    numbers = await connections.get("default").execute_query_dict("SELECT seq FROM agent_run_events ORDER BY seq")
    await Tortoise.close_connections()
    assert len(ends) == 1 and ends[0]["finished_at"] is not None, ends
    assert [row["seq"] for row in numbers] == [1, 2], numbers
    again = await _at_latest(config, lambda: _still_unique(run))
    assert run.completed_at is not None and again.completed_at == run.completed_at, (run.completed_at, again)
    print("kept")


async def _ended_run_with_events() -> AgentRun:
    run = await create_run(RunStatus.COMPLETED, log=False)
    await append_event(run.id, "content", {"content": "hello"})
    await append_event(run.id, "status", {"status": "completed"})
    return run


async def _still_unique(run: AgentRun) -> AgentRun:
    assert [e.sequence for e in await RunEvent.filter(run_id=run.id).order_by("sequence")] == [1, 2]
    with pytest.raises(IntegrityError):
        await RunEvent.create(run_id=run.id, sequence=2, type="content", payload={})
    return await AgentRun.get(id=run.id)


async def _at_latest(config: dict[str, Any], operation: Callable[[], Awaitable[AgentRun]]) -> AgentRun:
    await migrate(config=config)
    await Tortoise.init(config=config)
    try:
        return await operation()
    finally:
        await Tortoise.close_connections()


if __name__ == "__main__":
    asyncio.run(_renames_keep_the_values(sys.argv[1]))
