"""Tortoise's asyncpg client, bounded in time: the Tortoise engine `runplane.db_backend` (see config.tortoise_config).

Tortoise takes pooled connections with no timeout and gives them back with none either. When PostgreSQL stops
answering (a partition, a frozen host) asyncpg's command timeout fires, but giving the connection back then waits
for a CancelRequest over the same dead network; and a failed BEGIN leaves the task's connection context on a
connection given back to the pool (every later transaction of that task fails, even once the database is back). Here:
- taking a connection from the pool is bounded (`acquire_timeout`, which asyncpg also applies to giving it back);
- a connection whose command timed out, or whose task was cancelled, is terminated instead of cancelled and
  reset: the pool opens a fresh one on demand, so requests fail after one timeout, not two;
- a transaction whose BEGIN fails gives its connection back.
Connect and command timeouts are asyncpg's own `timeout` and `command_timeout` (see runplane/db.py for why
every connectivity failure becomes a 503).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from asyncpg.exceptions import InterfaceError
from tortoise.backends.asyncpg.client import AsyncpgDBClient, TransactionWrapper
from tortoise.backends.base.client import PoolConnectionWrapper, TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections


def _abandoned(exc: BaseException | None) -> bool:
    """The connection is mid-command with nobody waiting for the answer: nothing on it can be trusted."""
    return isinstance(exc, (TimeoutError, asyncio.CancelledError))


def _terminate(connection: Any) -> None:
    """Close at once, no goodbye; the pool slot is free again. asyncpg may have done it already (a failed
    CancelRequest terminates the connection), and then the proxy refuses: nothing left to do."""
    with contextlib.suppress(InterfaceError):
        connection.terminate()


class BoundedAsyncpgClient(AsyncpgDBClient):
    def __init__(self, *args: Any, acquire_timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    def acquire_connection(self) -> _BoundedPoolConnection:
        return _BoundedPoolConnection(self, self._pool_init_lock)

    def _in_transaction(self) -> TransactionContext:
        return _BoundedTransaction(TransactionWrapper(self), self._pool_init_lock)


class _BoundedPoolConnection(PoolConnectionWrapper[Any]):
    client: BoundedAsyncpgClient

    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        assert self.client._pool is not None
        self.connection = await self.client._pool.acquire(timeout=self.client.acquire_timeout)
        return self.connection

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if _abandoned(exc_val):
            _terminate(self.connection)  # release() below then has nothing to do
        assert self.client._pool is not None
        await self.client._pool.release(self.connection)


class _BoundedTransaction(TransactionContextPooled):
    async def __aenter__(self) -> Any:
        await self.ensure_connection()
        parent = cast(BoundedAsyncpgClient, self.client._parent)
        assert parent._pool is not None  # ensure_connection() made it
        self.client._connection = await parent._pool.acquire(timeout=parent.acquire_timeout)
        self.token = get_connections().set(self.connection_name, self.client)
        try:
            await self.client.begin()
        except BaseException:
            self._abandon()
            await super().__aexit__(None, None, None)  # gives the connection back and resets the context
            raise
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if _abandoned(exc_val):
            self._abandon()
        await super().__aexit__(exc_type, exc_val, exc_tb)

    def _abandon(self) -> None:
        """No ROLLBACK over a connection that does not answer: closing it rolls the transaction back."""
        if not self.client._finalized:
            _terminate(self.client._connection)
            self.client._finalized = True


client_class = BoundedAsyncpgClient
