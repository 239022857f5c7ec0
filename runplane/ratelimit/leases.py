"""Stream slots as leases that free themselves when their holder dies.

Each live stream holds one of its user's slots: an SSE response, a GraphQL stream over HTTP, or a WebSocket
while it runs at least one subscription (however many it multiplexes). With Redis, every process sees the
same slots: one sorted set per user, `rl:stream-leases:<user>`, member = lease id, score = expiry on Redis's
own clock. Taking a slot first drops the expired members, so the slots of a process that died without giving
them back (SIGKILL, a lost machine) are free again `lease_seconds` later at most. While it holds them, this
process re-adds all its leases every `lease_seconds / 3` (ZADD, so a Redis that restarted empty learns them
again). Without Redis, or while it is unreachable, this process counts its own leases.

Who gives a slot back: the stream, when it ends; and in any case the connection it ran on, when it ends
(`StreamScope.close`, called by `StreamScopeMiddleware` for every HTTP request and WebSocket), so no exit
path (a client gone before the first byte, a cancelled task, an exception) can keep a slot.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from runplane.errors import RateLimited
from runplane.periodic import Periodic

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("runplane.ratelimit")
RETRY_AFTER_SECONDS = 5
RETRY_REDIS_SECONDS = 5.0  # after a Redis failure, count locally this long before trying Redis again

# KEYS[1] the user's set; ARGV: limit, lease ms, lease id. 1 when taken, 0 when the user has no free slot.
TAKE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
# KEYS[1] the user's set; ARGV: lease ms, then every lease id this process holds for the user.
RENEW = """
local clock = redis.call('TIME')
local expiry = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) + tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], expiry, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return #ARGV - 1
"""


def lease_key(user: str) -> str:
    return f"rl:stream-leases:{user}"


class StreamLeases:
    """This process's stream slots: taken, renewed while held, given back."""

    def __init__(self, redis: Redis | None, *, lease_seconds: float, instance_id: str) -> None:
        self._redis = redis
        self._lease_ms = int(lease_seconds * 1000)
        self._ids = (f"{instance_id}:{n}" for n in itertools.count())
        self._held: dict[str, str] = {}  # lease id -> user
        self._by_user: dict[str, set[str]] = {}
        self._releasing: set[asyncio.Task[object]] = set()  # ZREMs in flight (the loop keeps tasks weakly)
        self._down_until = 0.0
        self._take_script = redis.register_script(TAKE) if redis is not None else None
        self._renew_script = redis.register_script(RENEW) if redis is not None else None
        self._renewer = Periodic("stream lease renewal", lease_seconds / 3, self.renew, log)

    def start(self) -> None:
        if self._redis is not None:
            self._renewer.start()

    async def stop(self) -> None:
        await self._renewer.stop()

    def held(self, user: str) -> int:
        return len(self._by_user.get(user, ()))

    async def take(self, user: str, limit: int) -> str | None:
        """A new lease id for one of the user's slots, or None when all `limit` are held."""
        lease = next(self._ids)
        if not await self._take(user, limit, lease):
            return None
        self._held[lease] = user
        self._by_user.setdefault(user, set()).add(lease)
        return lease

    def give_back(self, lease: str) -> None:
        """Synchronous, so it runs even inside a cancelled task: the Redis side goes in a task of its own, and if
        that fails the lease, no longer renewed, expires by itself."""
        user = self._held.pop(lease, None)
        if user is None:
            return
        leases = self._by_user[user]
        leases.discard(lease)
        if not leases:
            del self._by_user[user]
        if self._redis is not None:
            task = asyncio.get_running_loop().create_task(self._remove(user, lease))
            self._releasing.add(task)
            task.add_done_callback(self._releasing.discard)

    async def renew(self) -> None:
        """One pass: every lease this process holds gets a full lease time again (and exists again in Redis)."""
        if self._redis is None or self._renew_script is None or not self._by_user:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for user, leases in list(self._by_user.items()):
                await self._renew_script(keys=[lease_key(user)], args=[self._lease_ms, *leases], client=pipe)
            await pipe.execute()

    async def _take(self, user: str, limit: int, lease: str) -> bool:
        if self._take_script is not None and time.monotonic() >= self._down_until:
            try:
                return bool(await self._take_script(keys=[lease_key(user)], args=[limit, self._lease_ms, lease]))
            except (RedisError, OSError) as exc:
                log.warning("stream slots count per process while Redis is unreachable: %s", exc)
                self._down_until = time.monotonic() + RETRY_REDIS_SECONDS
        return self.held(user) < limit

    async def _remove(self, user: str, lease: str) -> None:
        assert self._redis is not None
        try:
            await self._redis.zrem(lease_key(user), lease)
        except (RedisError, OSError):
            pass  # not renewed any more: it expires by itself


class StreamScope:
    """The stream slot of one connection (an HTTP request or a WebSocket): at most one slot however many streams
    run on it, taken when the first starts, given back when the last ends or the connection does."""

    def __init__(self, leases: StreamLeases) -> None:
        self._leases = leases
        self._lease: str | None = None
        self._streams = 0
        self._lock = asyncio.Lock()  # two subscriptions starting together on one socket take one slot

    @property
    def holds_slot(self) -> bool:
        return self._lease is not None

    async def acquire(self, user: str, limit: int) -> Callable[[], Awaitable[None]]:
        """One stream starts on this connection; RateLimited when it needs a slot and the user has none free.
        Returns the stream's release (idempotent, synchronous inside)."""
        async with self._lock:
            if self._lease is None:
                self._lease = await self._leases.take(user, limit)
                if self._lease is None:
                    raise RateLimited(f"At most {limit} concurrent streams per user", retry_after=RETRY_AFTER_SECONDS)
            self._streams += 1
        released = False

        async def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._streams -= 1
                if self._streams <= 0:
                    self.close()

        return release

    def close(self) -> None:
        """The connection ended: its slot goes back, whatever its streams did."""
        self._streams = 0
        if self._lease is not None:
            lease, self._lease = self._lease, None
            self._leases.give_back(lease)
