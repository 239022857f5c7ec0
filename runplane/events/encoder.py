"""Encode each event once per subscription document, not once per subscriber.

1,000 clients watching one run with the same GraphQL subscription (or the same SSE framing) would
otherwise build the same frame 1,000 times. The key says which frames are interchangeable: the
query text and variables minus the client's own cursor (see `document_key`).
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from typing import Any

from .types import RunEventMessage

DEFAULT_CURSOR_KEYS = ("after", "cursor", "lastEventId", "last_event_id")


def document_key(
    query: str, variables: Mapping[str, Any] | None = None, *, cursor_keys: Iterable[str] = DEFAULT_CURSOR_KEYS
) -> str:
    """A stable key for "same document": the cursor differs per client but not the frame."""
    dropped = set(cursor_keys)
    kept = {k: v for k, v in (variables or {}).items() if k not in dropped}
    return query.strip() + "\n" + json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)


class SharedEncoder:
    """Bounded LRU of encoded frames keyed by (document key, run id, seq)."""

    def __init__(self, max_entries: int = 4096) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        self._max = max_entries
        self._frames: OrderedDict[tuple[Hashable, str, int], bytes] = OrderedDict()
        self._pending: dict[tuple[Hashable, str, int], asyncio.Future[bytes]] = {}
        self.hits = 0
        self.misses = 0

    def encode_once(self, key: Hashable, event: RunEventMessage, fn: Callable[[RunEventMessage], bytes]) -> bytes:
        slot = (key, event.run_id, event.sequence)
        frame = self._lookup(slot)
        if frame is None:
            self.misses += 1
            frame = fn(event)
            self._store(slot, frame)
        return frame

    async def encode_once_async(
        self, key: Hashable, event: RunEventMessage, fn: Callable[[RunEventMessage], Awaitable[bytes]]
    ) -> bytes:
        """Same, for async encoders (GraphQL execution): concurrent callers share one call."""
        slot = (key, event.run_id, event.sequence)
        while True:
            frame = self._lookup(slot)
            if frame is not None:
                return frame
            pending = self._pending.get(slot)
            if pending is None:
                self.misses += 1
                return await self._compute(slot, event, fn)
            await asyncio.wait([pending])  # raises only if *this* caller is cancelled
            if not pending.cancelled():  # its computing caller was cancelled: compute it here
                self.hits += 1
                return pending.result()

    async def _compute(
        self, slot: tuple[Hashable, str, int], event: RunEventMessage, fn: Callable[[RunEventMessage], Awaitable[bytes]]
    ) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[slot] = future
        try:
            frame = await fn(event)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: there may be no waiter to do it
            raise
        finally:
            self._pending.pop(slot, None)
        future.set_result(frame)
        self._store(slot, frame)
        return frame

    def _lookup(self, slot: tuple[Hashable, str, int]) -> bytes | None:
        frame = self._frames.get(slot)
        if frame is not None:
            self.hits += 1
            self._frames.move_to_end(slot)
        return frame

    def _store(self, slot: tuple[Hashable, str, int], frame: bytes) -> None:
        self._frames[slot] = frame
        if len(self._frames) > self._max:
            self._frames.popitem(last=False)

    def __len__(self) -> int:
        return len(self._frames)
