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
_strike_windows: dict[str, tuple[float, int]] = {}  # key -> (monotonic expiry, count)
_streams: dict[str, int] = {}
_releasing: set[asyncio.Task[int]] = set()  # slot releases in flight (the loop keeps tasks weakly)


async def hit(ctx: RequestContext, bucket: str, limit: int) -> None:
    """Count one request of the caller in `bucket`; RateLimited (429, Retry-After) past `limit`."""
    if limit <= 0 or ctx.principal is None or ctx.principal.user_id is None:
        return
    key, window = _window_key(bucket, str(ctx.principal.user_id))
    if await _increment(ctx, key) > limit:
        raise RateLimited(f"Rate limit exceeded: {limit} {bucket} per minute", retry_after=_retry_after(window))


async def refuse_if_exhausted(ctx: RequestContext, bucket: str, identities: list[str], limit: int) -> None:
    """RateLimited while any identity (an email, a client address) has `limit` strikes recorded.

    Strikes count in a window that opens at an identity's first strike and lasts a minute, so a burst is
    caught whole, whatever the clock says. Reads only: `strike` counts, so only some outcomes (failures)
    use the budget."""
    if limit <= 0:
        return
    for identity in identities:
        count, seconds_left = await _strikes(ctx, f"rl:{bucket}:{identity}")
        if count >= limit:
            raise RateLimited("Too many attempts: wait before trying again", retry_after=max(1, seconds_left))


async def strike(ctx: RequestContext, bucket: str, identities: list[str], limit: int) -> None:
    if limit <= 0:
        return
    for identity in identities:
        await _add_strike(ctx, f"rl:{bucket}:{identity}")


async def _strikes(ctx: RequestContext, key: str) -> tuple[int, int]:
    redis = ctx.services.redis
    if redis is not None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.ttl(key)
            count, ttl = await pipe.execute()
        return int(count or 0), int(ttl)
    expires_at, count = _strike_windows.get(key, (0.0, 0))
    left = expires_at - time.monotonic()
    return (count, int(left) + 1) if left > 0 else (0, 0)


async def _add_strike(ctx: RequestContext, key: str) -> None:
    redis = ctx.services.redis
    if redis is not None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, WINDOW_SECONDS, nx=True)  # the window opens at the first strike only
            await pipe.execute()
        return
    count, _ = await _strikes(ctx, key)
    if count == 0:
        if len(_strike_windows) > 50_000:
            _strike_windows.clear()
        _strike_windows[key] = (time.monotonic() + WINDOW_SECONDS, 1)
    else:
        _strike_windows[key] = (_strike_windows[key][0], count + 1)


def _window_key(bucket: str, identity: str) -> tuple[str, int]:
    window = int(time.time()) // WINDOW_SECONDS
    return f"rl:{bucket}:{identity}:{window}", window


def _retry_after(window: int) -> int:
    return max(1, (window + 1) * WINDOW_SECONDS - int(time.time()))


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
