"""Live run events: types, fan-out hub, buses (in-memory and Redis), the follow_run reader and
the shared frame encoder. The durable event log itself lives with the models; readers receive it
as a `replay(after)` callable."""

from .bus import EventBus, InMemoryEventBus, RedisEventBus, create_event_bus
from .encoder import SharedEncoder, document_key
from .hub import DEFAULT_MAX_QUEUE, FanoutHub, Subscription
from .reader import follow_run, follow_run_heartbeat
from .redis_bus import BusStats
from .types import (
    TERMINAL_STATUSES,
    BusItem,
    ControlMessage,
    ControlSignal,
    RunEventMessage,
    SlowConsumer,
    StreamGap,
    SubscriptionClosed,
    control_channel,
    events_channel,
)

__all__ = [
    "DEFAULT_MAX_QUEUE",
    "TERMINAL_STATUSES",
    "BusItem",
    "BusStats",
    "ControlMessage",
    "ControlSignal",
    "EventBus",
    "FanoutHub",
    "InMemoryEventBus",
    "RedisEventBus",
    "RunEventMessage",
    "SharedEncoder",
    "SlowConsumer",
    "StreamGap",
    "Subscription",
    "SubscriptionClosed",
    "control_channel",
    "create_event_bus",
    "document_key",
    "events_channel",
    "follow_run",
    "follow_run_heartbeat",
]
