"""Rate limits (the doors strangers knock on): per-user requests and run starts
per minute, concurrent streams per user, and per-address throttles of login, registration and the admin key.

Windows are the `limits` library's fixed windows (runplane/ratelimit/windows.py): each hit is taken before the
work it guards, atomically, so N concurrent attempts against a limit of L let at most L through. Stream slots
are leases that free themselves when their process dies (runplane/ratelimit/leases.py)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import lru_cache

from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute

from runplane.errors import RateLimited
from runplane.ratelimit.leases import StreamScope
from runplane.resolvers.context import RequestContext

TOO_MANY_ATTEMPTS = "Too many attempts: wait before trying again"


@lru_cache(maxsize=256)
def per_minutes(amount: int, minutes: int = 1) -> RateLimitItem:
    return RateLimitItemPerMinute(amount, minutes)


@lru_cache(maxsize=64)
def per_hour(amount: int) -> RateLimitItem:
    return RateLimitItemPerHour(amount)


async def hit(ctx: RequestContext, bucket: str, limit: int) -> None:
    """Count one request of the caller in `bucket`; RateLimited (429, Retry-After) past `limit` a minute."""
    if limit <= 0 or ctx.principal is None or ctx.principal.user_id is None:
        return
    message = f"Rate limit exceeded: {limit} {bucket} per minute"
    await take(ctx, per_minutes(limit), bucket, str(ctx.principal.user_id), message=message)


async def take(
    ctx: RequestContext, item: RateLimitItem, bucket: str, identity: str, *, message: str = TOO_MANY_ATTEMPTS
) -> None:
    """One hit of `identity` in `bucket`'s window; RateLimited with the seconds until the window resets."""
    retry_after = await ctx.services.windows.hit(item, bucket, identity)
    if retry_after is not None:
        raise RateLimited(message, retry_after=retry_after)


async def refund(ctx: RequestContext, item: RateLimitItem, bucket: str, identity: str) -> None:
    """Give a hit back: the attempt was one this window does not count (a success)."""
    await ctx.services.windows.refund(item, bucket, identity)


async def clear(ctx: RequestContext, item: RateLimitItem, bucket: str, identity: str) -> None:
    await ctx.services.windows.clear(item, bucket, identity)


async def acquire_stream_slot(ctx: RequestContext, user_id: uuid.UUID) -> Callable[[], Awaitable[None]]:
    """Take one of the user's concurrent stream slots for the caller's connection (RateLimited when none is
    free); returns the release. A WebSocket holds one slot however many subscriptions it multiplexes. From now on
    the connection also ends when the caller's credential lapses (runplane/connection.py).

    Taken before a stream's response starts, so the refusal can still be a 429."""
    connection = ctx.connection
    if connection is not None:
        connection.follow_credentials(ctx.principal)
    limit = ctx.settings.max_streams_per_user
    if limit <= 0:
        return _nothing
    scope = connection.streams if connection is not None else StreamScope(ctx.services.leases)
    return await scope.acquire(str(user_id), limit)


async def _nothing() -> None:
    return None
