"""Redis pub/sub bus: ONE subscriber connection per process feeds every local subscriber.

Why per-run reference-counted SUBSCRIBE rather than PSUBSCRIBE agent_run:*: with a pattern every
process would receive (and parse) every event of every run in the cluster, whether or not anyone
local is watching it. Per-run SUBSCRIBE only ships what this process needs; the hub's per-run
subscriber set is the reference count (first subscriber subscribes, last one unsubscribes).

The subscriber connection is driven directly (not redis-py's PubSub, which silently reconnects
and resubscribes): we must know when delivery was interrupted, because every subscriber of every
run then gets a StreamGap once its channel is confirmed again, and re-reads the log. That is how
nothing is lost while Redis is down.

Publishing never raises: a failed publish goes to a bounded backlog that is flushed in order when
Redis answers again, so readers in other processes (whose connections may never have dropped)
still see the event live; if the backlog overflows they recover from the log on the next gap.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry

from .hub import DEFAULT_MAX_QUEUE, FanoutHub, Subscription
from .types import (
    DEFAULT_CHANNEL_PREFIX,
    ControlMessage,
    ControlSignal,
    RunEventMessage,
    StreamGap,
    control_channel,
    events_channel,
)

log = logging.getLogger(__name__)

_IO_ERRORS = (RedisError, OSError)


@dataclass
class BusStats:
    published: int = 0
    publish_failures: int = 0
    backlog_dropped: int = 0
    backlog_flushed: int = 0
    connects: int = 0
    disconnects: int = 0
    gaps_signalled: int = 0
    bad_messages: int = 0


class RedisEventBus:
    def __init__(
        self,
        redis_url: str,
        *,
        max_queue: int = DEFAULT_MAX_QUEUE,
        prefix: str = DEFAULT_CHANNEL_PREFIX,
        client_name: str = "runplane-events",
        confirm_timeout: float = 5.0,
        ping_interval: float = 10.0,
        backoff: tuple[float, float] = (0.05, 5.0),
        io_timeout: float = 2.0,
        publish_backlog: int = 10_000,
        publish_retry_after: float = 1.0,
    ) -> None:
        self.hub = FanoutHub(max_queue, on_idle=self._on_idle)
        self.stats = BusStats()
        self.client_name = client_name
        self._url = redis_url
        self._prefix = prefix
        self._confirm_timeout = confirm_timeout
        self._ping_interval = ping_interval
        self._backoff = backoff
        self._io_timeout = io_timeout
        self._retry_after = publish_retry_after
        self._client: Redis | None = None
        self._conn: AbstractConnection | None = None
        self._subscribed: set[str] = set()  # runs with SUBSCRIBE sent on the current connection
        self._live: set[str] = set()  # runs whose subscription Redis confirmed
        self._gap_pending: set[str] = set()  # runs owed a StreamGap on their next confirmation
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self._sync_lock = asyncio.Lock()
        self._reconcile_soon = False
        self._connected = asyncio.Event()
        self._backlog: deque[tuple[str, bytes]] = deque(maxlen=publish_backlog)
        self._publish_retry_at = 0.0
        self._publish_down = False
        self._flush_wanted = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Returns at once: a bus whose Redis is down still accepts subscribers and publishes."""
        self._client = Redis.from_url(
            self._url,
            client_name=f"{self.client_name}-pub",
            socket_connect_timeout=self._io_timeout,
            socket_timeout=self._io_timeout,
            # One immediate retry: a pooled connection that died with a Redis restart fails once.
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[RedisConnectionError],
        )
        self._spawn(self._listen_forever())
        self._spawn(self._flush_forever())

    async def stop(self) -> None:
        self._stopped = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._backlog:
            log.warning("event bus stopped with %d unpublished messages (they are in the log)", len(self._backlog))
        if self._client is not None:
            await self._client.aclose()
            self._client = None  # later publishes only queue (bounded); nothing reconnects
        self.hub.close_all()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self, timeout: float | None = None) -> bool:
        try:
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)  # keep a reference: the loop holds tasks only weakly
        task.add_done_callback(self._tasks.discard)

    # -- subscribing -------------------------------------------------------------------------

    async def subscribe(self, run_id: str) -> Subscription:
        sub = self.hub.add(run_id)
        try:
            await self._await_confirmation(run_id)
        except BaseException:
            sub.close()
            raise
        return sub

    async def _await_confirmation(self, run_id: str) -> None:
        """Waits until Redis delivers the run's channels, so a log read done after this misses
        nothing. If that cannot be known (Redis down, slow), the run is owed a StreamGap instead."""
        if run_id in self._live:
            return
        if self._conn is None:
            self._gap_pending.add(run_id)
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(run_id, []).append(waiter)
        try:
            await self._reconcile()
            async with asyncio.timeout(self._confirm_timeout):
                await waiter
        except TimeoutError:
            log.warning("no SUBSCRIBE confirmation for run %s; a gap marker will follow", run_id)
            self._gap_pending.add(run_id)
        finally:
            self._drop_waiter(run_id, waiter)

    def _drop_waiter(self, run_id: str, waiter: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(run_id, [])
        if waiter in waiters:
            waiters.remove(waiter)
        if not waiters:
            self._waiters.pop(run_id, None)

    def _release_waiters(self, run_id: str | None = None) -> None:
        runs = [run_id] if run_id is not None else list(self._waiters)
        for run in runs:
            for waiter in self._waiters.get(run, []):
                if not waiter.done():
                    waiter.set_result(None)

    def _on_idle(self, run_id: str) -> None:
        """Last local subscriber of a run left: unsubscribe soon (coalesced into one task)."""
        self._gap_pending.discard(run_id)
        if self._stopped or self._reconcile_soon:
            return
        self._reconcile_soon = True
        self._spawn(self._reconcile_later())

    async def _reconcile_later(self) -> None:
        self._reconcile_soon = False
        await self._reconcile()

    async def _reconcile(self) -> None:
        """Brings the connection's channel set in line with the hub's runs. Serialized by a lock so
        SUBSCRIBE/UNSUBSCRIBE go out in the order the hub changed."""
        async with self._sync_lock:
            conn = self._conn
            if conn is None or not conn.is_connected:  # send_command would silently reconnect
                return
            want = self.hub.run_ids()
            add, drop = want - self._subscribed, self._subscribed - want
            self._subscribed = want
            self._live -= drop
            try:
                if drop:
                    await conn.send_command("UNSUBSCRIBE", *self._channels(drop), check_health=False)
                if add:
                    await conn.send_command("SUBSCRIBE", *self._channels(add), check_health=False)
            except _IO_ERRORS as exc:  # the read loop sees the same broken socket and reconnects
                log.debug("pub/sub command failed: %s", exc)

    def _channels(self, run_ids: Iterable[str]) -> list[str]:
        # Control before events: the events confirmation then proves both are active.
        out: list[str] = []
        for run_id in run_ids:
            out += [control_channel(run_id, self._prefix), events_channel(run_id, self._prefix)]
        return out

    # -- the subscriber connection -----------------------------------------------------------

    async def _listen_forever(self) -> None:
        delay = self._backoff[0]
        while True:
            conn = self._new_connection()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]  # redis-py leaves Connection.connect unannotated
                await self._attach(conn)
                delay = self._backoff[0]
                await self._read_loop(conn)
            except _IO_ERRORS as exc:
                self._detach(conn, exc)
            finally:
                await conn.disconnect(nowait=True)
            # Jitter: after a Redis restart, all processes must not reconnect in the same instant.
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, self._backoff[1])

    def _new_connection(self) -> AbstractConnection:
        pool = ConnectionPool.from_url(
            self._url,
            client_name=self.client_name,
            socket_connect_timeout=self._io_timeout,
            socket_timeout=self._io_timeout,
            socket_keepalive=True,
        )
        return pool.connection_class(**pool.connection_kwargs)

    async def _attach(self, conn: AbstractConnection) -> None:
        self._conn = conn
        self._subscribed, self._live = set(), set()
        # Whatever was published while we were not subscribed is only in the log.
        self._gap_pending |= self.hub.run_ids()
        self.stats.connects += 1
        if self.stats.connects > 1:
            log.info("event bus reconnected to Redis; resubscribing %d runs", len(self._gap_pending))
        await self._reconcile()
        self._connected.set()
        self._publish_retry_at = 0.0  # Redis answers again: flush the publish backlog now
        self._flush_wanted.set()

    def _detach(self, conn: AbstractConnection, exc: BaseException) -> None:
        if self._conn is not conn:
            log.debug("event bus cannot reach Redis: %s", exc)
            return
        log.warning("event bus lost its Redis subscription: %s", exc)
        self._conn = None
        self._connected.clear()
        self._subscribed, self._live = set(), set()
        self._gap_pending |= self.hub.run_ids()
        self.stats.disconnects += 1
        self._release_waiters()  # they go on with the log read; the gap marker covers the rest

    async def _read_loop(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        last_rx = loop.time()
        while True:
            response = await conn.read_response(timeout=self._ping_interval, push_request=True)
            if response is None:
                # Silence: PING so a half-open TCP connection is noticed, not waited on forever.
                if loop.time() - last_rx > 2.5 * self._ping_interval:
                    raise RedisConnectionError("no reply to PING on the pub/sub connection")
                await conn.send_command("PING", check_health=False)
                continue
            last_rx = loop.time()
            self._dispatch(response)

    def _dispatch(self, response: Any) -> None:
        if not isinstance(response, list) or len(response) < 2:
            return
        kind = response[0]
        if kind == b"message" and len(response) == 3:
            self._on_message(response[1], response[2])
        elif kind == b"subscribe":
            self._on_confirmed(response[1])

    def _parse_channel(self, channel: bytes) -> tuple[str, str] | None:
        name = channel.decode(errors="replace")
        head = self._prefix + ":"
        run_id, _, kind = name[len(head) :].rpartition(":")
        if not name.startswith(head) or not run_id or kind not in ("events", "control"):
            return None
        return run_id, kind

    def _on_message(self, channel: bytes, data: bytes) -> None:
        parsed = self._parse_channel(channel)
        if parsed is None or not self.hub.has_run(parsed[0]):
            return  # unsubscribe in flight: nobody local wants it, skip the JSON parse
        run_id, kind = parsed
        try:
            item = RunEventMessage.from_json(data) if kind == "events" else ControlMessage.from_wire(run_id, data)
        except (ValueError, KeyError, TypeError) as exc:
            self.stats.bad_messages += 1
            log.warning("dropping malformed message on %r: %s", channel, exc)
            return
        if item is not None:
            self.hub.deliver(run_id, item)

    def _on_confirmed(self, channel: bytes) -> None:
        parsed = self._parse_channel(channel)
        if parsed is None or parsed[1] != "events":
            return
        run_id = parsed[0]
        self._live.add(run_id)
        self._release_waiters(run_id)
        if run_id in self._gap_pending:
            self._gap_pending.discard(run_id)
            self.stats.gaps_signalled += 1
            self.hub.deliver(run_id, StreamGap(run_id))

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, event: RunEventMessage) -> None:
        await self._send(events_channel(event.run_id, self._prefix), event.json_bytes)

    async def publish_control(self, run_id: str, signal: ControlSignal, data: Mapping[str, Any] | None = None) -> None:
        message = ControlMessage(run_id, signal, dict(data or {}))
        await self._send(control_channel(run_id, self._prefix), message.json_bytes)

    async def _send(self, channel: str, data: bytes) -> None:
        """Never raises. Order is kept: once something waits in the backlog, later messages queue
        behind it. While Redis is known down, messages queue without a network attempt so the run
        executor is not slowed by connect timeouts."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._backlog or loop.time() < self._publish_retry_at:
            self._enqueue(channel, data)
            return
        try:
            await self._client.publish(channel, data)
        except _IO_ERRORS as exc:
            self._publish_failed(exc)
            self._enqueue(channel, data)
            return
        self._publish_ok()

    def _enqueue(self, channel: str, data: bytes) -> None:
        if len(self._backlog) == self._backlog.maxlen:
            self.stats.backlog_dropped += 1  # deque drops the oldest; readers re-read the log
        self._backlog.append((channel, data))
        self._flush_wanted.set()

    def _publish_ok(self) -> None:
        self.stats.published += 1
        if self._publish_down:
            self._publish_down = False
            log.info("event publishing to Redis recovered")

    def _publish_failed(self, exc: BaseException) -> None:
        self.stats.publish_failures += 1
        self._publish_retry_at = asyncio.get_running_loop().time() + self._retry_after
        if not self._publish_down:  # one warning per outage, not one per event
            self._publish_down = True
            log.warning("event publish to Redis failed (events stay in the log): %s", exc)

    async def _flush_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._flush_wanted.wait()
            await asyncio.sleep(max(0.0, self._publish_retry_at - loop.time()))
            if await self._flush_backlog():
                self._flush_wanted.clear()

    async def _flush_backlog(self) -> bool:
        assert self._client is not None
        while self._backlog:
            head = self._backlog[0]
            try:
                await self._client.publish(*head)
            except _IO_ERRORS as exc:
                self._publish_failed(exc)
                return False
            if self._backlog and self._backlog[0] is head:  # unless overflow already dropped it
                self._backlog.popleft()
            self.stats.backlog_flushed += 1
            self._publish_ok()
        return True
