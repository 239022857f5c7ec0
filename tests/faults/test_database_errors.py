"""Which database failures are outages (503 SERVICE_UNAVAILABLE + Retry-After) and which are bugs (500), with real
driver errors: asyncpg refused by a port where nothing listens, SQLite really locked by another connection,
real SQL syntax errors. Runs in both passes; the SQLite end-to-end case only in the SQLite one. The PostgreSQL
outage itself (a proxy cut under a running server) is test_postgres_unreachable.py.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import asyncpg
import httpx
import pytest
from graphql import GraphQLError
from tortoise.exceptions import IntegrityError, OperationalError

from runplane.config import Settings
from runplane.db import DatabaseUnreachable, wait_for_database
from runplane.db_errors import RETRY_AFTER_SECONDS, database_unavailable
from runplane.errors import NotFound, ServiceUnavailable
from runplane.rest_compat.common import error_response
from runplane.schema.errors import shape_errors
from tests import support
from tests.support import POSTGRES_ADMIN_DSN, LiveServer, UserHandle, free_port


async def refused_by_asyncpg() -> BaseException:
    try:
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=2)
    except Exception as exc:
        return exc
    raise AssertionError("something listens on a free port")


def raised(exc: BaseException) -> BaseException:
    """`exc` with a traceback of this module, as if our own code had raised it."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def locked_sqlite_error(tmp_path: Path) -> sqlite3.OperationalError:
    path = tmp_path / "locked.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        sqlite3.connect(path, timeout=0).execute("INSERT INTO t VALUES (1)")
    except sqlite3.OperationalError as exc:
        return exc
    finally:
        holder.rollback()
        holder.close()
    raise AssertionError("the write went through the lock")


async def test_refused_connection_from_the_driver_is_an_outage() -> None:
    unavailable = database_unavailable(await refused_by_asyncpg())
    assert isinstance(unavailable, ServiceUnavailable)
    assert (unavailable.status, unavailable.code, unavailable.retry_after) == (
        503,
        "SERVICE_UNAVAILABLE",
        RETRY_AFTER_SECONDS,
    )
    assert "127.0.0.1" not in unavailable.message


async def test_wrapped_driver_errors_are_outages_through_their_cause(tmp_path: Path) -> None:
    refused = await refused_by_asyncpg()
    try:
        raise RuntimeError("while loading the user") from refused
    except RuntimeError as wrapped:
        assert database_unavailable(wrapped) is not None
    locked = locked_sqlite_error(tmp_path)
    assert "locked" in str(locked)
    assert database_unavailable(locked) is not None
    try:
        raise OperationalError(locked) from locked  # how Tortoise's SQLite client reports it
    except OperationalError as wrapped:
        assert database_unavailable(wrapped) is not None


async def test_network_errors_and_timeouts_elsewhere_are_not_the_database() -> None:
    """A model provider refusing or Redis timing out is not a database outage: those stay 500s (or their own errors)."""
    assert database_unavailable(raised(ConnectionRefusedError(111, "Connection refused"))) is None
    try:
        await asyncio.wait_for(asyncio.sleep(1), 0.01)
    except TimeoutError as exc:
        assert database_unavailable(exc) is None


async def test_sql_errors_are_not_outages(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "plain.sqlite3") as conn:
        with pytest.raises(sqlite3.OperationalError) as syntax:
            conn.execute("SELEC 1")
    assert database_unavailable(syntax.value) is None
    for wrapper in (OperationalError, IntegrityError):
        try:
            raise wrapper(syntax.value) from syntax.value
        except wrapper as wrapped:
            assert database_unavailable(wrapped) is None
    if support.test_database_kind() == "postgres":
        conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            with pytest.raises(asyncpg.PostgresSyntaxError) as pg_syntax:
                await conn.execute("SELEC 1")
            with pytest.raises(asyncpg.UndefinedTableError) as missing:
                await conn.execute("SELECT * FROM no_such_table_here")
        finally:
            await conn.close()
        assert database_unavailable(pg_syntax.value) is None
        assert database_unavailable(missing.value) is None


async def test_domain_errors_keep_their_meaning() -> None:
    refused = await refused_by_asyncpg()
    try:
        raise NotFound("Project not found") from refused
    except NotFound as exc:
        assert database_unavailable(exc) is None


def test_rest_answer_is_503_with_retry_after() -> None:
    response = error_response(ServiceUnavailable("The database is temporarily unavailable", retry_after=5))
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    assert b'"detail":"The database is temporarily unavailable"' in response.body
    assert b'"code":"SERVICE_UNAVAILABLE"' in response.body
    assert "retry-after" not in error_response(ServiceUnavailable("Email is not configured")).headers


async def test_graphql_errors_say_service_unavailable_without_the_address() -> None:
    refused = await refused_by_asyncpg()
    (shaped,) = shape_errors([GraphQLError(str(refused), original_error=refused)], "req-1")
    assert shaped.extensions == {"code": "SERVICE_UNAVAILABLE", "retry_after": RETRY_AFTER_SECONDS}
    assert "127.0.0.1" not in shaped.message and "refused" not in shaped.message.lower()
    (bug,) = shape_errors([GraphQLError("x", original_error=raised(ConnectionRefusedError(111, "nope")))], "req-2")
    assert bug.extensions and bug.extensions["code"] == "INTERNAL_SERVER_ERROR"


def test_postgres_goes_through_the_bounded_client_with_the_timeouts() -> None:
    settings = Settings(
        database_url="postgres://me:secret@db.example:5433/app?max_size=7",
        database_connect_timeout=1.5,
        database_command_timeout=4,
    )
    connection = settings.tortoise_config()["connections"]["default"]
    assert connection["engine"] == "runplane.db_backend"
    credentials = connection["credentials"]
    assert (credentials["host"], credentials["port"], credentials["database"], credentials["max_size"]) == (
        "db.example",
        5433,
        "app",
        7,
    )
    assert (credentials["timeout"], credentials["command_timeout"], credentials["acquire_timeout"]) == (1.5, 4, 4)
    migrations = settings.tortoise_config(migrations=True)["connections"]["default"]["credentials"]
    assert migrations["timeout"] == 1.5 and "command_timeout" not in migrations
    sqlite = Settings(database_url="sqlite:///tmp/x.sqlite3").tortoise_config()
    assert sqlite["connections"]["default"] == "sqlite:///tmp/x.sqlite3"


def test_timeouts_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPLANE_DATABASE_CONNECT_TIMEOUT", "0.5")
    monkeypatch.setenv("RUNPLANE_DATABASE_COMMAND_TIMEOUT", "3")
    monkeypatch.setenv("RUNPLANE_DATABASE_STARTUP_TIMEOUT", "0")
    settings = Settings.from_env(data_dir=Path("/tmp/runplane-settings-test"), jwt_secret="s" * 40)
    assert (
        settings.database_connect_timeout,
        settings.database_command_timeout,
        settings.database_startup_timeout,
    ) == (0.5, 3, 0)


async def test_startup_gives_up_after_the_startup_timeout() -> None:
    settings = Settings(
        database_url=f"postgres://postgres@127.0.0.1:{free_port()}/x",
        database_connect_timeout=0.5,
        database_startup_timeout=1,
    )
    started = time.monotonic()
    with pytest.raises(DatabaseUnreachable, match="giving up"):
        await wait_for_database(settings)
    assert 0.9 < time.monotonic() - started < 3


@pytest.mark.skipif(support.test_database_kind() != "postgres", reason="needs PostgreSQL")
async def test_startup_does_not_retry_what_waiting_cannot_fix() -> None:
    settings = Settings(
        database_url="postgres://postgres@127.0.0.1:5432/runplane_no_such_database", database_startup_timeout=30
    )
    started = time.monotonic()
    with pytest.raises(asyncpg.InvalidCatalogNameError):
        await wait_for_database(settings)
    assert time.monotonic() - started < 3


@pytest.mark.skipif(support.test_database_kind() != "sqlite", reason="the session server runs on SQLite in this pass")
async def test_locked_sqlite_database_answers_503(
    client: httpx.AsyncClient, server: LiveServer, alice: UserHandle
) -> None:
    """Another process holds SQLite's write lock past the busy timeout: a write answers 503 + Retry-After, reads go
    on."""
    path = server.settings.database_url.removeprefix("sqlite://")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        created = await client.post("/api/projects", json={"name": "locked out"}, headers=alice.headers)
        assert created.status_code == 503, created.text
        assert created.json()["code"] == "SERVICE_UNAVAILABLE" and int(created.headers["retry-after"]) >= 1
        assert (
            await client.get("/api/projects", headers=alice.headers)
        ).status_code == 200  # WAL: readers are not blocked
    finally:
        holder.rollback()
        holder.close()
    created = await client.post("/api/projects", json={"name": "after the lock"}, headers=alice.headers)
    assert created.status_code == 201, created.text
