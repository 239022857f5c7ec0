"""Per-user rate limits (seeds/orchestrator-api.md): requests/min, run starts/min, concurrent streams.

Fixed one-minute windows: in Redis when configured (shared by every process), in memory otherwise.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

from runplane.errors import RateLimited
from runplane.resolvers.context import RequestContext

WINDOW_SECONDS = 60
STREAM_SLOT_TTL = 24 * 3600  # a crashed process's stream slots expire eventually

_windows: dict[str, tuple[int, int]] = {}  # key -> (window start, count)
_streams: dict[str, int] = {}
_releasing: set[asyncio.Task[int]] = set()  # slot releases in flight (the loop keeps tasks weakly)


async def hit(ctx: RequestContext, bucket: str, limit: int) -> None:
    """Count one request of the caller in `bucket`; RateLimited (429, Retry-After) past `limit`."""
    if limit <= 0 or ctx.principal is None or ctx.principal.user_id is None:
        return
    window = int(time.time()) // WINDOW_SECONDS
    key = f"rl:{bucket}:{ctx.principal.user_id}:{window}"
    count = await _increment(ctx, key)
    if count > limit:
        retry_after = max(1, (window + 1) * WINDOW_SECONDS - int(time.time()))
        raise RateLimited(f"Rate limit exceeded: {limit} {bucket} per minute", retry_after=retry_after)


async def _increment(ctx: RequestContext, key: str) -> int:
    redis = ctx.services.redis
    if redis is not None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS + 5)
            count, _ = await pipe.execute()
        return int(count)
    window = int(key.rsplit(":", 1)[1])
    start, count = _windows.get(key, (window, 0))
    if len(_windows) > 50_000:
        _windows.clear()
    _windows[key] = (start, count + 1)
    return count + 1


async def acquire_stream_slot(ctx: RequestContext, user_id: uuid.UUID) -> Callable[[], Awaitable[None]]:
    """Take one of the user's concurrent stream slots (RateLimited when none is free); returns the release.

    Taken before a stream's response starts, so the refusal can still be a 429."""
    limit = ctx.settings.max_streams_per_user
    if limit <= 0:
        return _nothing
    key = f"rl:streams:{user_id}"
    if await _adjust(ctx, key, +1) > limit:
        await _adjust(ctx, key, -1)
        raise RateLimited(f"At most {limit} concurrent streams per user", retry_after=5)
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            # Called while the stream's task is being cancelled (client gone): anyio re-cancels every await
            # there, so an unshielded Redis DECR would never run and the slot would leak for a day.
            task = asyncio.create_task(_adjust(ctx, key, -1))
            _releasing.add(task)
            task.add_done_callback(_releasing.discard)
            await asyncio.shield(task)

    return release


async def _nothing() -> None:
    return None


async def _adjust(ctx: RequestContext, key: str, delta: int) -> int:
    redis = ctx.services.redis
    if redis is not None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incrby(key, delta)
            pipe.expire(key, STREAM_SLOT_TTL)
            value, _ = await pipe.execute()
        return int(value)
    _streams[key] = _streams.get(key, 0) + delta
    return _streams[key]
