"""Local fan-out hub shared by every bus: per-run subscribers, each with a bounded queue.

Delivery is a plain append per subscriber (nothing is serialized or copied per subscriber), so one
event reaches thousands of local subscribers cheaply. A subscriber that falls `max_queue` items
behind is cut off instead of buffering without limit; it recovers by re-reading the event log.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable

from .types import BusItem, SlowConsumer, SubscriptionClosed

DEFAULT_MAX_QUEUE = 1000


class _State(enum.Enum):
    OPEN = "open"
    SLOW = "slow"
    CLOSED = "closed"


class Subscription:
    """Async iterator over one run's live items (RunEventMessage | ControlMessage | StreamGap).

    Iteration raises `SlowConsumer` once cut off and stops when closed. The queue is a deque plus
    one waiter future rather than an asyncio.Queue: a burst of N events wakes the consumer once,
    and a cut-off can drop the backlog at once to free memory.
    """

    __slots__ = ("_items", "_max", "_on_close", "_state", "_waiter", "run_id")

    def __init__(self, run_id: str, max_queue: int, on_close: Callable[[Subscription], None]) -> None:
        self.run_id = run_id
        self._items: deque[BusItem] = deque()
        self._max = max_queue
        self._waiter: asyncio.Future[None] | None = None
        self._state = _State.OPEN
        self._on_close = on_close

    @property
    def cut_off(self) -> bool:
        return self._state is _State.SLOW

    @property
    def closed(self) -> bool:
        return self._state is not _State.OPEN

    def offer(self, item: BusItem) -> bool:
        """put_nowait; False when the queue is full (the hub then cuts this subscriber off)."""
        if self._state is not _State.OPEN:
            return True
        if len(self._items) >= self._max:
            return False
        self._items.append(item)
        self._wake()
        return True

    async def get(self, timeout: float | None = None) -> BusItem | None:
        """Next item, or None after `timeout` seconds of silence."""
        while not self._items:
            self._raise_if_ended()
            if not await self._wait(timeout):
                return None
        return self._items.popleft()

    async def _wait(self, timeout: float | None) -> bool:
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            if timeout is None:  # the common path: no timer object per wait
                await waiter
                return True
            async with asyncio.timeout(timeout):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            self._waiter = None

    def close(self) -> None:
        self._end(_State.CLOSED)

    def _end(self, state: _State) -> None:
        if self._state is not _State.OPEN:
            return
        self._state = state
        self._items.clear()  # free the backlog now; the reader re-reads the log anyway
        self._wake()
        self._on_close(self)

    def _raise_if_ended(self) -> None:
        if self._state is _State.SLOW:
            raise SlowConsumer(f"subscriber of run {self.run_id} fell {self._max} items behind")
        if self._state is _State.CLOSED:
            raise SubscriptionClosed(self.run_id)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> BusItem:
        try:
            item = await self.get()
        except SubscriptionClosed:
            raise StopAsyncIteration from None
        assert item is not None  # no timeout given
        return item

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class FanoutHub:
    """Per-run sets of subscriptions. `on_idle(run_id)` fires when a run loses its last subscriber,
    which is how the Redis bus reference-counts its channel subscriptions."""

    def __init__(self, max_queue: int = DEFAULT_MAX_QUEUE, on_idle: Callable[[str], None] | None = None) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be >= 1")
        self.max_queue = max_queue
        self._subs: dict[str, set[Subscription]] = {}
        self._on_idle = on_idle
        self.cut_off_count = 0

    def add(self, run_id: str) -> Subscription:
        sub = Subscription(run_id, self.max_queue, self._remove)
        self._subs.setdefault(run_id, set()).add(sub)
        return sub

    def has_run(self, run_id: str) -> bool:
        return run_id in self._subs

    def run_ids(self) -> set[str]:
        return set(self._subs)

    def subscriber_count(self, run_id: str) -> int:
        return len(self._subs.get(run_id, ()))

    def deliver(self, run_id: str, item: BusItem) -> int:
        """Offers `item` to every subscriber of the run; returns how many there were."""
        subs = self._subs.get(run_id)
        if not subs:
            return 0
        count = len(subs)
        slow = [sub for sub in subs if not sub.offer(item)]
        for sub in slow:  # after the loop: cutting off mutates `subs`
            self.cut_off_count += 1
            sub._end(_State.SLOW)
        return count

    def deliver_all(self, make: Callable[[str], BusItem]) -> None:
        for run_id in list(self._subs):
            self.deliver(run_id, make(run_id))

    def close_all(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.run_id)
        if subs is None or sub not in subs:
            return
        subs.discard(sub)
        if not subs:
            del self._subs[sub.run_id]
            if self._on_idle is not None:
                self._on_idle(sub.run_id)
