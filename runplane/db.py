"""Database start-up: wait for PostgreSQL, apply migrations (serialized across processes) and open Tortoise.

Outages after start-up: every wait on PostgreSQL is bounded (connect and command timeouts, see
runplane/db_backend.py), a failure to reach it is answered 503 with Retry-After (runplane/db_errors.py), and
the pool opens new connections on demand, so the service recovers by itself when the database is back.
Start-up itself waits up to `database_startup_timeout` for an unreachable database, retrying with backoff and
logging each attempt, then fails: the process exits (status 3 for `runplane serve`) with the reason logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from runplane.config import Settings
from runplane.db_errors import database_unavailable, describe

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every runplane process.
MIGRATION_LOCK_KEY = 0x72756E706C616E65  # "runplane"
STARTUP_BACKOFF = (0.5, 5.0)  # seconds: first retry, longest wait between tries


class DatabaseUnreachable(RuntimeError):
    """Start-up gave up waiting for the database."""


class _OneLineWarnings(logging.Filter):
    """asyncpg's pool logs a traceback each time its background reconnect fails: during an outage one line will do."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and record.levelno <= logging.WARNING:
            record.msg, record.args = f"{record.getMessage()}: {describe(record.exc_info[1])}", None
            record.exc_info = record.exc_text = None
        return True


_POOL_LOG = logging.getLogger("asyncpg.pool")
_TORTOISE_LOG = logging.getLogger("tortoise")


class _NoMigrationShutdownLine(logging.Filter):
    """Tortoise's migrate() closes its own connections and logs "Tortoise-ORM shutdown" at start-up, which reads as
    if the server were stopping; only that line, and only while migrations run, is dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Tortoise-ORM shutdown"


async def open_database(settings: Settings, *, apply_migrations: bool = True) -> None:
    if not any(isinstance(f, _OneLineWarnings) for f in _POOL_LOG.filters):
        _POOL_LOG.addFilter(_OneLineWarnings())
    await wait_for_database(settings)
    if apply_migrations:
        async with _migration_lock(settings):
            await _migrate_quietly(settings)
    # Global fallback: the lifespan task initialises Tortoise, request tasks (other contexts) use it.
    await Tortoise.init(config=settings.tortoise_config(), _enable_global_fallback=True)


async def _migrate_quietly(settings: Settings) -> None:
    quiet = _NoMigrationShutdownLine()
    _TORTOISE_LOG.addFilter(quiet)
    try:
        await migrate(config=settings.tortoise_config(migrations=True))
        await Tortoise.close_connections()
    finally:
        _TORTOISE_LOG.removeFilter(quiet)


async def close_database() -> None:
    await Tortoise.close_connections()


async def wait_for_database(settings: Settings) -> None:
    """Retry while PostgreSQL is out of reach (a compose stack starting, a failover); other errors (bad password,
    unknown database) fail at once, and so does the last try after `database_startup_timeout` seconds."""
    if settings.is_sqlite:
        return
    deadline = time.monotonic() + settings.database_startup_timeout
    delay = STARTUP_BACKOFF[0]
    while True:
        try:
            connection = await _connect(settings)
            await connection.close()
            return
        except Exception as exc:
            if database_unavailable(exc) is None:
                raise
            pause = min(delay, deadline - time.monotonic())
            if pause <= 0:
                message = (
                    f"database unreachable for {settings.database_startup_timeout:g}s, giving up "
                    f"(RUNPLANE_DATABASE_STARTUP_TIMEOUT): {describe(exc)}"
                )
                log.error(message)
                raise DatabaseUnreachable(message) from None  # the driver's traceback says nothing more
            log.warning("database unreachable, retrying in %.1fs: %s", pause, describe(exc))
        await asyncio.sleep(pause)
        delay = min(delay * 2, STARTUP_BACKOFF[1])


async def _connect(settings: Settings) -> Any:
    import asyncpg

    return await asyncpg.connect(postgres_dsn(settings.database_url), timeout=settings.database_connect_timeout)


@asynccontextmanager
async def _migration_lock(settings: Settings) -> AsyncIterator[None]:
    """Two API processes starting at once against PostgreSQL must not both run a migration."""
    if settings.is_sqlite:
        yield
        return

    conn = await _connect(settings)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await conn.close()


def postgres_dsn(database_url: str) -> str:
    """Tortoise spells PostgreSQL URLs `postgres://` or `asyncpg://`; asyncpg wants `postgresql://`."""
    scheme, rest = database_url.split("://", 1)
    return f"postgresql://{rest}" if scheme in {"postgres", "asyncpg", "psql"} else database_url
