"""Which failures mean "the database cannot be reached right now" (503 + Retry-After: try again) rather than
a bug or a bad query (500). Both transports ask here: app.py for REST, schema/errors.py for GraphQL.

Driver errors that name an outage count by their type (asyncpg's connection errors, server shutting down or
out of connection slots, Tortoise's DBConnectionError, SQLite's locked or unopenable file). Plain network
errors and timeouts (refused, reset, unreachable, asyncpg's connect and command timeouts) count only when they
came out of the database driver, so that a model provider's or Redis's timeout is not reported as the
database. SQL errors (syntax, constraint, permission) are never an outage, whatever wraps them.
"""

from __future__ import annotations

import errno
import socket
import sqlite3
from collections.abc import Iterator

import asyncpg.exceptions as pg
from tortoise.exceptions import BaseORMException, DBConnectionError

from runplane.errors import DomainError, ServiceUnavailable

RETRY_AFTER_SECONDS = 5
MESSAGE = "The database is temporarily unavailable; try again shortly"

# Exception types worth a look: app.py registers its handler for these (everything else stays a 500).
CANDIDATE_TYPES: tuple[type[BaseException], ...] = (
    OSError,
    pg.PostgresError,
    pg.InterfaceError,
    BaseORMException,
    sqlite3.Error,
)

_DRIVER_MODULES = ("asyncpg", "tortoise", "aiosqlite", "runplane.db_backend")
_OUTAGE_TYPES = (
    pg.PostgresConnectionError,
    pg.CannotConnectNowError,
    pg.AdminShutdownError,
    pg.CrashShutdownError,
    pg.TooManyConnectionsError,
    DBConnectionError,
)
_CLOSED_MESSAGES = ("connection is closed", "pool is closed", "pool is closing")
_SQLITE_MESSAGES = ("database is locked", "database table is locked", "unable to open database file", "disk i/o error")
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.ENETUNREACH,
    errno.EHOSTUNREACH,
    errno.ENETDOWN,
    errno.EHOSTDOWN,
}


def database_unavailable(exc: BaseException) -> ServiceUnavailable | None:
    """The domain error to answer with when `exc` (or what caused it) is the database being out of reach."""
    if isinstance(exc, DomainError):  # a resolver already said what it means
        return None
    chain = list(_chain(exc))
    outage = any(_names_an_outage(e) for e in chain) or (
        any(_network_failure(e) for e in chain) and any(_raised_by_driver(e) for e in chain)
    )
    return ServiceUnavailable(MESSAGE, retry_after=RETRY_AFTER_SECONDS) if outage else None


def describe(exc: BaseException) -> str:
    """One line for the log, with the detail clients do not get (hosts, ports, driver messages)."""
    parts = [f"{type(e).__name__}: {e}"[:300] if str(e) else type(e).__name__ for e in _chain(exc)]
    return " <- ".join(part for part in parts if part != "CancelledError")  # a timeout's cause, nothing to add


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 16:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _names_an_outage(exc: BaseException) -> bool:
    if isinstance(exc, _OUTAGE_TYPES):
        return True
    if isinstance(exc, pg.InterfaceError):
        return any(message in str(exc) for message in _CLOSED_MESSAGES)
    if isinstance(exc, sqlite3.OperationalError):
        return any(message in str(exc).lower() for message in _SQLITE_MESSAGES)
    return False


def _network_failure(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):  # asyncio.TimeoutError is TimeoutError
        return True
    return isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS


def _raised_by_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if any(module == name or module.startswith(name + ".") for name in _DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False
