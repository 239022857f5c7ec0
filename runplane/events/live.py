"""Live groups: ONE follower task per (run, encoding) per process feeds every local subscriber.

With a follower task per subscriber, each event wakes a thousand tasks, walks a thousand generator
chains and makes a thousand small socket writes. A `LiveGroup` instead follows the run once (the
lossless `follow_run` reader: replay, live tail, gap repair), encodes each event once, and at the
end of each loop iteration hands every live member ONE batch: the frames of all events that arrived
since the last batch, built once per distinct framing and shared by every member that framing fits.

Each member keeps its own cursor (the last seq handed to its socket) and the same guarantees as a
reader of its own:
- join: it replays the log after its own cursor (`serve`) until it reaches what the group has
  already handed out, then becomes live in the same loop step; batches skip seq <= its cursor.
- slow: a sink that goes over its bound is detached (memory stays bounded); once it drains, the
  member replays the log after its cursor and joins again. A sink may instead give up (close).
- end: the group's reader ends on the terminal event / finished run / stopped bus; members end after
  the last batch. Leaving is `leave()`; the last member to leave stops the group's reader.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Sequence
from contextlib import aclosing
from typing import Any, Generic, Protocol, TypeVar

from .types import RunEventMessage

log = logging.getLogger(__name__)

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)
Follow = Callable[
    [int], AsyncGenerator["RunEventMessage | None", None]
]  # lossless stream after a cursor (None = heartbeat)
Replay = Callable[[int], Awaitable[Sequence[RunEventMessage]]]  # one page of the log after a cursor
Encode = Callable[[RunEventMessage], Awaitable[bytes]]  # the per-event payload every member shares


class Sink(Protocol[T_contra]):
    """Where a member's frames go. `push` never waits; False means detach (over bound or gone)."""

    gone: bool

    def push(self, data: T_contra) -> bool: ...

    async def write(self, data: T_contra) -> None:
        """push, then wait until under the bound again (paces a replay)."""

    async def recover(self) -> bool:
        """After a detach: wait until drained; False to give up (the sink closed the connection)."""


class Framer(Protocol[T_co]):
    """Turns shared payloads into what one member's sink takes. Members whose framers have equal
    `key`s get the very same object for a batch."""

    @property
    def key(self) -> Hashable: ...

    def build(self, payloads: Sequence[bytes]) -> T_co: ...


class SinkGone(Exception):
    """The member's connection went away while it was being served."""


class Member(Generic[T]):
    __slots__ = ("_wake", "cursor", "framer", "live", "sink")

    def __init__(self, cursor: int, framer: Framer[T], sink: Sink[T]) -> None:
        self.cursor = cursor
        self.framer = framer
        self.sink = sink
        self.live = False
        self._wake: asyncio.Future[None] | None = None

    def wake(self) -> None:
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def sleep(self) -> None:
        self._wake = asyncio.get_running_loop().create_future()
        try:
            await self._wake
        finally:
            self._wake = None


class LiveGroup:
    detaches = 0  # process-wide count of members cut from live delivery (slow or gone)

    def __init__(
        self, start: int, follow: Follow, replay: Replay, encode: Encode, on_idle: Callable[[LiveGroup], None]
    ) -> None:
        self.flushed = start  # every live member has been handed everything up to here
        self.ended = False
        self.error: BaseException | None = None
        self._follow = follow
        self._replay = replay
        self._encode = encode
        self._on_idle = on_idle
        self._members: set[Member[Any]] = set()
        self._live: set[Member[Any]] = set()
        self._pending: list[tuple[RunEventMessage, bytes]] = []
        self._flush_scheduled = False
        self._task = asyncio.get_running_loop().create_task(self._run())

    @property
    def member_count(self) -> int:
        return len(self._members)

    # -- the one reader ------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            async with aclosing(self._follow(self.flushed)) as events:
                async for event in events:
                    if event is None:
                        continue
                    # Encode first, then append: an encoder that awaits lets _flush swap `_pending` meanwhile, and
                    # `self._pending.append(... await ...)` would append to the list already flushed (lost event).
                    payload = await self._encode(event)
                    self._pending.append((event, payload))
                    if not self._flush_scheduled:  # after this loop step: every event read by then is one batch
                        self._flush_scheduled = True
                        asyncio.get_running_loop().call_soon(self._flush)
                    if event.is_terminal:
                        break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("live group reader failed")
            self.error = exc
        finally:
            self._flush()
            self.ended = True
            for member in list(self._members):
                member.wake()

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        first, last = batch[0][0].sequence, batch[-1][0].sequence
        built: dict[tuple[Hashable, int], Any] = {}
        for member in list(self._live):
            start = member.cursor + 1
            if start > last:
                continue
            if start < first:  # it joined behind a reader that started ahead of the log: catch up again
                self._detach(member)
                continue
            slot = (member.framer.key, start)
            data = built.get(slot)
            if data is None:
                data = built[slot] = member.framer.build([payload for _, payload in batch[start - first :]])
            member.cursor = last
            if not member.sink.push(data):
                self._detach(member)
        self.flushed = last

    def _detach(self, member: Member[Any]) -> None:
        LiveGroup.detaches += 1
        member.live = False
        self._live.discard(member)
        member.wake()

    # -- members -------------------------------------------------------------------------------

    async def serve(self, member: Member[Any]) -> None:
        """Delivers the run to `member` until the run's stream ends. Raises SinkGone when its
        connection went away, or the reader's error. Always `leave()` afterwards."""
        self._members.add(member)
        while True:
            if await self._catch_up(member):
                return
            if not self.ended:
                member.live = True  # no await since _catch_up checked `flushed`: nothing slips between
                self._live.add(member)
                await member.sleep()
            if member.sink.gone:
                raise SinkGone
            if self.ended and member.live:
                break
            if not member.live and not self.ended and not await member.sink.recover():
                raise SinkGone
        if self.error is not None:
            raise self.error

    async def _catch_up(self, member: Member[Any]) -> bool:
        """Replays the log after the member's cursor until it reaches `flushed`. True: the stream
        ended (terminal event sent, or the group ended and the log has nothing more)."""
        while member.cursor < self.flushed or self.ended:
            page = await self._replay(member.cursor)
            page = [event for event in page if event.sequence > member.cursor]
            if not page:
                return self.ended
            page = page[: next((i + 1 for i, event in enumerate(page) if event.is_terminal), len(page))]
            payloads = [await self._encode(event) for event in page]
            member.cursor = page[-1].sequence
            await member.sink.write(member.framer.build(payloads))
            if member.sink.gone:
                raise SinkGone
            if page[-1].is_terminal:
                return True
        return False

    def leave(self, member: Member[Any]) -> None:
        member.live = False
        self._live.discard(member)
        self._members.discard(member)
        if not self._members:
            self._task.cancel()
            self._on_idle(self)


class LiveGroups:
    """Registry of running groups by key (bus, run, encoding); ended or idle groups drop out."""

    def __init__(self) -> None:
        self._groups: dict[Hashable, LiveGroup] = {}

    def join(self, key: Hashable, member: Member[Any], follow: Follow, replay: Replay, encode: Encode) -> LiveGroup:
        """The running group for `key` (a new one reading from the member's cursor), with `member`
        counted in it at once: the group cannot stop before the member's `serve` starts."""
        group = self._groups.get(key)
        if group is None or group.ended:
            group = self._groups[key] = LiveGroup(member.cursor, follow, replay, encode, lambda g: self._drop(key, g))
        group._members.add(member)
        return group

    def _drop(self, key: Hashable, group: LiveGroup) -> None:
        if self._groups.get(key) is group:
            del self._groups[key]

    def __len__(self) -> int:
        return len(self._groups)


class QueueSink(Generic[T]):
    """A sink drained by its own consumer (an SSE body, a plain ASGI WebSocket): frames are kept in
    a bounded list; the consumer takes them all at once."""

    def __init__(self, bound: int, size: Callable[[T], int]) -> None:
        self.gone = False
        self._bound = bound
        self._size = size
        self._items: list[T] = []
        self._bytes = 0
        self._ready: asyncio.Future[None] | None = None
        self._drained: asyncio.Future[None] | None = None
        self.finished = False

    def push(self, data: T) -> bool:
        if self.gone:
            return False
        self._items.append(data)
        self._bytes += self._size(data)
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)
        return self._bytes <= self._bound

    async def write(self, data: T) -> None:
        if not self.push(data):
            await self.recover()

    async def recover(self) -> bool:
        while self._items and not self.gone:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                await self._drained
            finally:
                self._drained = None
        return not self.gone

    async def take(self, timeout: float | None = None) -> list[T]:
        """Everything queued, waiting up to `timeout` for something ([] after a silent timeout,
        or once `finish()` was called and nothing is left)."""
        if not self._items and not self.finished:
            self._ready = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(timeout):
                    await self._ready
            except TimeoutError:
                return []
            finally:
                self._ready = None
        items, self._items, self._bytes = self._items, [], 0
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        return items

    def finish(self) -> None:
        """No more items will come: wakes the consumer so it can end."""
        self.finished = True
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def close(self) -> None:
        self.gone = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
