"""follow_run: replay a run's event log after a cursor, then tail the bus live, exactly once.

Order of operations is what makes it lossless:
1. subscribe first, so anything published from then on is queued for us;
2. ask `is_finished()` BEFORE reading the log, so a "finished" answer means the read sees the end;
3. read the log after the cursor; then tail live items, skipping seq <= the last delivered one.
Anything live delivery may have missed (a seq jump, a StreamGap after a Redis reconnect, being cut
off as a slow consumer) is filled by reading the log again after the cursor.

The executor must: write each event to the log, then publish it; on completion write the terminal
status event, mark the run finished, then publish END_STREAM (or ERROR).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from contextlib import aclosing

from .bus import EventBus
from .hub import Subscription
from .types import BusItem, ControlMessage, RunEventMessage, SlowConsumer, StreamGap, SubscriptionClosed

Replay = Callable[[int], Awaitable[Sequence[RunEventMessage]]]
IsFinished = Callable[[], Awaitable[bool]]

# Live events ahead of the cursor are held while the log read fills the hole; bounded because
# they are in the log anyway.
_MAX_AHEAD = 1000


async def follow_run(
    run_id: str,
    after: int,
    replay: Replay,
    bus: EventBus,
    *,
    is_finished: IsFinished,
    poll_interval: float = 5.0,
    page_size: int | None = None,
) -> AsyncGenerator[RunEventMessage, None]:
    """Yields the run's events with seq > `after`, in order, each once, then ends.

    `replay(after)` returns log events with seq > after in ascending order, possibly one page of
    them. With `page_size`, a shorter page means the end of the log; without it, the log is read
    again until a read brings nothing new (one extra read per catch-up, but safe for any pager).
    After `poll_interval` seconds of silence `is_finished()` is asked again, so a stream whose
    END_STREAM signal was lost still ends. Close with `contextlib.aclosing` to unsubscribe promptly.
    """
    follower = _Follower(run_id, after, replay, bus, is_finished, page_size)
    async with aclosing(follower.run(poll_interval)) as items:
        async for item in items:
            if item is not None:
                yield item


async def follow_run_heartbeat(
    run_id: str,
    after: int,
    replay: Replay,
    bus: EventBus,
    *,
    is_finished: IsFinished,
    heartbeat: float = 15.0,
    page_size: int | None = None,
) -> AsyncGenerator[RunEventMessage | None, None]:
    """follow_run that also yields None after every `heartbeat` seconds of silence (SSE pings).
    `is_finished()` is asked at each of those ticks."""
    follower = _Follower(run_id, after, replay, bus, is_finished, page_size)
    async with aclosing(follower.run(heartbeat)) as items:
        async for item in items:
            yield item


class _Cursor:
    """The last delivered seq, plus live events that arrived ahead of it."""

    def __init__(self, last: int) -> None:
        self.last = last
        self.ahead: dict[int, RunEventMessage] = {}

    def accept(self, events: Sequence[RunEventMessage]) -> list[RunEventMessage]:
        """Returns the events now deliverable, contiguous from last + 1; drops duplicates."""
        ready: list[RunEventMessage] = []
        for event in sorted(events, key=lambda e: e.sequence):
            if event.sequence == self.last + 1:
                ready.append(event)
                self.last = event.sequence
                ready += self._drain_ahead()
            elif event.sequence > self.last + 1 and len(self.ahead) < _MAX_AHEAD:
                self.ahead[event.sequence] = event
        return ready

    def _drain_ahead(self) -> list[RunEventMessage]:
        ready: list[RunEventMessage] = []
        if not self.ahead:  # the usual case: live events arrive in order
            return ready
        while (event := self.ahead.pop(self.last + 1, None)) is not None:
            ready.append(event)
            self.last = event.sequence
        self.ahead = {seq: e for seq, e in self.ahead.items() if seq > self.last}
        return ready


class _Follower:
    def __init__(
        self,
        run_id: str,
        after: int,
        replay: Replay,
        bus: EventBus,
        is_finished: IsFinished,
        page_size: int | None,
    ) -> None:
        self.run_id = run_id
        self.cursor = _Cursor(after)
        self.replay = replay
        self.bus = bus
        self.is_finished = is_finished
        self.page_size = page_size

    async def run(self, tick: float) -> AsyncGenerator[RunEventMessage | None, None]:
        sub = await self.bus.subscribe(self.run_id)
        try:
            finished = await self.is_finished()
            async for event in self._catch_up():
                yield event
                if event.is_terminal:
                    return
            if finished:
                return
            while True:
                item, sub = await self._next(sub, tick)
                if item is _CLOSED:
                    return  # the bus stopped: the client reconnects with its cursor
                ready, read_log, end = await self._plan(item)
                for event in ready:
                    yield event
                    if event.is_terminal:
                        return
                if read_log:
                    async for event in self._catch_up():
                        yield event
                        if event.is_terminal:
                            return
                if end:
                    return
                if item is None:
                    yield None  # heartbeat after a silent tick
        finally:
            sub.close()

    async def _next(self, sub: Subscription, tick: float) -> tuple[BusItem | object | None, Subscription]:
        try:
            return await sub.get(tick), sub
        except SlowConsumer:
            # Cut off for falling behind: subscribe again and take the missed part from the log.
            sub = await self.bus.subscribe(self.run_id)
            return StreamGap(self.run_id, "slow consumer"), sub
        except SubscriptionClosed:
            return _CLOSED, sub

    async def _plan(self, item: BusItem | object | None) -> tuple[list[RunEventMessage], bool, bool]:
        """(events to deliver now, whether to read the log, whether the stream then ends)."""
        if isinstance(item, RunEventMessage):
            ready = self.cursor.accept([item])
            return ready, item.sequence > self.cursor.last, False  # still ahead: a gap
        if isinstance(item, ControlMessage):
            # Events written before END_STREAM may not have reached us live: read the log last.
            return [], item.ends_stream, item.ends_stream
        if isinstance(item, StreamGap):
            return [], True, False
        finished = await self.is_finished()  # silent tick
        return [], finished or bool(self.cursor.ahead), finished

    async def _catch_up(self) -> AsyncGenerator[RunEventMessage, None]:
        while True:
            page = await self.replay(self.cursor.last)
            ready = self.cursor.accept(page)
            for event in ready:
                yield event
            if not ready or (self.page_size is not None and len(page) < self.page_size):
                return


_CLOSED = object()
