"""Database start-up: apply migrations (serialized across processes) and open Tortoise."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tortoise import Tortoise
from tortoise.migrations.api import migrate

from runplane.config import Settings

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every runplane process.
MIGRATION_LOCK_KEY = 0x72756E706C616E65  # "runplane"


async def open_database(settings: Settings, *, apply_migrations: bool = True) -> None:
    if apply_migrations:
        async with _migration_lock(settings):
            await migrate(config=settings.tortoise_config())
            await Tortoise.close_connections()
    # Global fallback: the lifespan task initialises Tortoise, request tasks (other contexts) use it.
    await Tortoise.init(config=settings.tortoise_config(), _enable_global_fallback=True)


async def close_database() -> None:
    await Tortoise.close_connections()


@asynccontextmanager
async def _migration_lock(settings: Settings) -> AsyncIterator[None]:
    """Two API processes starting at once against PostgreSQL must not both run a migration."""
    if settings.is_sqlite:
        yield
        return
    import asyncpg

    conn = await asyncpg.connect(postgres_dsn(settings.database_url))
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
