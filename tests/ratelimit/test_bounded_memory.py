"""Floods of distinct keys leave memory flat: the rate-limit store holds only open windows (and forgets none of
them), and every cache keyed by what clients choose is bounded with real expiry (cachetools)."""

from __future__ import annotations

import asyncio
import tracemalloc
import uuid

from limits import RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter

from runplane.ratelimit.memory import ExpiringMemoryStorage
from runplane.resolvers.integrations import CACHE_ENTRIES, ComposioClient
from runplane.resolvers.sandboxes import previews as sandboxes
from tests.fakes.composio_server import FakeComposioServer

FLOOD = 3_000


async def flood(limiter: FixedWindowRateLimiter, item: RateLimitItemPerSecond, keys: int) -> None:
    for _ in range(keys):
        await limiter.hit(item, "flood", uuid.uuid4().hex)


async def test_the_window_store_holds_open_windows_only_and_forgets_none() -> None:
    storage = ExpiringMemoryStorage()
    limiter = FixedWindowRateLimiter(storage)
    lockout, one_second = RateLimitItemPerSecond(3, 60), RateLimitItemPerSecond(3)
    for _ in range(3):
        assert await limiter.hit(lockout, "victim", "owner")  # an open window, spent
    await flood(limiter, one_second, FLOOD)
    assert not await limiter.hit(lockout, "victim", "owner")  # the flood of other keys did not reset it
    sizes = []
    tracemalloc.start()
    try:
        for _ in range(3):
            await asyncio.sleep(1.1)  # the last flood's windows close
            await flood(limiter, one_second, FLOOD)
            sizes.append(tracemalloc.get_traced_memory()[0])
            assert len(storage) <= FLOOD + 1  # the new flood's windows and the victim's: nothing older
    finally:
        tracemalloc.stop()
    assert sizes[-1] < sizes[0] * 1.2 + 200_000, sizes  # flat
    assert not await limiter.hit(lockout, "victim", "owner")


async def test_caches_keyed_by_client_input_stay_bounded() -> None:
    for _ in range(50_000):  # preview tokens name (sandbox, user): a flood of distinct ones
        sandboxes._owner_cache[(uuid.uuid4().hex, uuid.uuid4().hex)] = True
    assert len(sandboxes._owner_cache) == sandboxes._owner_cache.maxsize
    sandboxes._owner_cache.clear()

    composio = await FakeComposioServer(api_key="k").start()
    client = ComposioClient(composio.base_url, "k", ttl=60, max_entries=40)
    try:
        for limit in range(100):  # a user-chosen slug x limit per request
            await client.cached("/api/v3/tools", {"toolkit_slug": "github", "limit": limit})
        assert len(client._cache) == 40
        default = ComposioClient(composio.base_url, "k", ttl=60)
        assert default._cache.maxsize == CACHE_ENTRIES
        await default.aclose()
    finally:
        await client.aclose()
        await composio.stop()


async def test_cache_entries_expire() -> None:
    composio = await FakeComposioServer(api_key="k").start()
    client = ComposioClient(composio.base_url, "k", ttl=0.2)
    try:
        for limit in range(10):
            await client.cached("/api/v3/tools", {"toolkit_slug": "github", "limit": limit})
        await asyncio.sleep(0.3)
        client._cache.expire()
        assert len(client._cache) == 0
    finally:
        await client.aclose()
        await composio.stop()
