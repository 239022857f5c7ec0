"""Request windows on the `limits` library: fixed windows, each opening at its first hit, counted atomically
before the work they guard (N concurrent attempts against a limit of L: at most L pass).

In Redis when configured (one count for every process, through our redis-py pool and limits' redis-py
bridge), in process memory otherwise. While Redis is unreachable the windows count in memory, per process
(limits stay in force, a little looser), and Redis takes over again by itself once it answers."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from redis.exceptions import RedisError

from runplane.ratelimit.memory import ExpiringMemoryStorage

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("runplane.ratelimit")
KEY_PREFIX = "rl"
# After a Redis failure, windows count in memory this long before Redis is tried again: during an outage a
# request must not wait for a connect timeout first.
RETRY_REDIS_SECONDS = 5.0
Change = Callable[[FixedWindowRateLimiter], Awaitable[object]]


class Windows:
    def __init__(self, redis: Redis | None) -> None:
        self.memory = ExpiringMemoryStorage()
        self._local = FixedWindowRateLimiter(self.memory)
        self._shared: FixedWindowRateLimiter | None = None
        if redis is not None:
            # limits types its client options as scalars; a connection pool is one it documents too.
            pool: Any = redis.connection_pool
            storage = RedisStorage(
                "async+redis://", implementation="redispy", key_prefix=KEY_PREFIX, connection_pool=pool
            )
            self._shared = FixedWindowRateLimiter(storage)
        self._down_until = 0.0  # monotonic time before which Redis is not tried
        self._down_logged = False

    async def hit(self, item: RateLimitItem, *identity: str) -> int | None:
        """Count one hit; None when it fits in the window, else the seconds until the window resets."""
        shared = self._reachable()
        if shared is not None:
            try:
                return await self._hit(shared, item, identity)
            except (RedisError, StorageError, OSError) as exc:
                self._note_outage(exc)
        return await self._hit(self._local, item, identity)

    async def refund(self, item: RateLimitItem, *identity: str) -> None:
        """Give one hit back (the attempt turned out to be one the window does not count, such as a success)."""
        await self._each(lambda limiter: limiter.hit(item, *identity, cost=-1))

    async def clear(self, item: RateLimitItem, *identity: str) -> None:
        await self._each(lambda limiter: limiter.clear(item, *identity))

    async def _hit(self, limiter: FixedWindowRateLimiter, item: RateLimitItem, identity: tuple[str, ...]) -> int | None:
        if await limiter.hit(item, *identity):
            self._note_recovery(limiter)
            return None
        reset_at, _ = await limiter.get_window_stats(item, *identity)
        return max(1, math.ceil(reset_at - time.time()))

    async def _each(self, change: Change) -> None:
        """Refunds and clears go to both stores: a window may have been opened in memory during an outage."""
        await change(self._local)
        shared = self._reachable()
        if shared is not None:
            try:
                await change(shared)
            except (RedisError, StorageError, OSError) as exc:
                self._note_outage(exc)

    def _reachable(self) -> FixedWindowRateLimiter | None:
        return self._shared if time.monotonic() >= self._down_until else None

    def _note_outage(self, exc: Exception) -> None:
        if not self._down_logged:
            log.warning("rate limits count in this process's memory while Redis is unreachable: %s", exc)
        self._down_logged = True
        self._down_until = time.monotonic() + RETRY_REDIS_SECONDS

    def _note_recovery(self, limiter: FixedWindowRateLimiter) -> None:
        if self._down_logged and limiter is self._shared:
            log.warning("rate limits count in Redis again")
            self._down_logged = False
