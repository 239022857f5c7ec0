"""The event bus contract and its embedded implementation.

An event is written to the log first and published after. The bus is only the
fast path: a subscriber that misses something live (slow consumer, reconnect) re-reads the log,
so publishing is best-effort and never raises into the run executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from .hub import DEFAULT_MAX_QUEUE, FanoutHub, Subscription
from .types import ControlMessage, ControlSignal, RunEventMessage


@runtime_checkable
class EventBus(Protocol):
    hub: FanoutHub  # the local subscribers (metrics, tests)

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Stops delivery; every open subscription ends (its iterator stops)."""

    async def publish(self, event: RunEventMessage) -> None:
        """Best effort, never raises: the event is already in the log."""

    async def publish_control(
        self, run_id: str, signal: ControlSignal, data: Mapping[str, Any] | None = None
    ) -> None: ...

    async def subscribe(self, run_id: str) -> Subscription:
        """Returns once live delivery for the run is active (or known to be interrupted, in which
        case a StreamGap will follow when it resumes). Subscribe BEFORE reading the log."""


class InMemoryEventBus:
    """One-process bus: publishing is a direct hand-off to the local hub."""

    def __init__(self, *, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.hub = FanoutHub(max_queue)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        self.hub.close_all()

    async def publish(self, event: RunEventMessage) -> None:
        self.hub.deliver(event.run_id, event)

    async def publish_control(self, run_id: str, signal: ControlSignal, data: Mapping[str, Any] | None = None) -> None:
        self.hub.deliver(run_id, ControlMessage(run_id, signal, dict(data or {})))

    async def subscribe(self, run_id: str) -> Subscription:
        return self.hub.add(run_id)


def create_event_bus(redis_url: str | None, *, max_queue: int = DEFAULT_MAX_QUEUE) -> EventBus:
    """Redis when a URL is configured (several processes), in-memory otherwise (embedded)."""
    if redis_url:
        return RedisEventBus(redis_url, max_queue=max_queue)
    return InMemoryEventBus(max_queue=max_queue)


from .redis_bus import RedisEventBus  # noqa: E402  (re-export; redis_bus does not import bus)

__all__ = ["EventBus", "InMemoryEventBus", "RedisEventBus", "create_event_bus"]
