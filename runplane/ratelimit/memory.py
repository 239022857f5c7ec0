"""A `limits` storage in process memory whose size follows the windows that are open, not the keys ever seen.

limits' own MemoryStorage sweeps every key on each hit once its last sweep ended (O(keys) per request under a
flood of distinct keys) and the hand-written store this replaces cleared every key at 50k entries, which reset
every lockout. Here a heap orders the windows by expiry: each call drops the expired ones only, so memory holds
exactly the open windows and no open window is ever forgotten. Fixed windows only (`incr`, `get`, `get_expiry`).
"""

from __future__ import annotations

import heapq
import time

from limits.aio.storage import Storage


class ExpiringMemoryStorage(Storage):
    STORAGE_SCHEME: list[str] | None = ["async+runplane-memory"]  # noqa: RUF012 (limits registers storages by scheme)

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str) -> None:
        self._counts: dict[str, int] = {}
        self._expiry: dict[str, float] = {}
        self._heap: list[tuple[float, str]] = []  # (expiry, key); stale pairs are skipped when popped
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def __len__(self) -> int:
        return len(self._counts)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        self._drop_expired(time.time())
        count = self._counts.get(key, 0) + amount
        if key not in self._counts:  # the window opens at its first hit
            at = time.time() + expiry
            self._expiry[key] = at
            heapq.heappush(self._heap, (at, key))
        self._counts[key] = count
        return count

    async def get(self, key: str) -> int:
        self._drop_expired(time.time())
        return self._counts.get(key, 0)

    async def get_expiry(self, key: str) -> float:
        return self._expiry.get(key, time.time())

    async def clear(self, key: str) -> None:
        self._counts.pop(key, None)
        self._expiry.pop(key, None)  # its heap entry goes stale and is skipped

    async def reset(self) -> int | None:
        dropped = len(self._counts)
        self._counts.clear()
        self._expiry.clear()
        self._heap.clear()
        return dropped

    async def check(self) -> bool:
        return True

    def _drop_expired(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            if self._expiry.get(key) == at:  # not cleared and reopened since
                del self._counts[key], self._expiry[key]
        if len(heap) > 2 * len(self._counts) + 1024:  # cleared keys left stale entries behind: rebuild
            self._heap = [(at, key) for key, at in self._expiry.items()]
            heapq.heapify(self._heap)
