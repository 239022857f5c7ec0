"""Values that travel through the event bus: run events, control signals, stream markers.

A `RunEventMessage` is immutable and serializes itself once (`json_bytes`): the same bytes go to Redis,
to every local subscriber and to any transport that wants the raw JSON, whatever the fan-out.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

# A status event with one of these ends the run's stream.
from runplane.clock import iso_now
from runplane.statuses import TERMINAL_STATUSES as TERMINAL_STATUSES

log = logging.getLogger(__name__)

DEFAULT_CHANNEL_PREFIX = "agent_run"


class RunEventType(enum.StrEnum):
    """The `type` of a run event (the REST stream's frame types). New kinds are added here first."""

    CONTENT = "content"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    STATUS = "status"
    ERROR = "error"


def events_channel(run_id: str, prefix: str = DEFAULT_CHANNEL_PREFIX) -> str:
    return f"{prefix}:{run_id}:events"


def control_channel(run_id: str, prefix: str = DEFAULT_CHANNEL_PREFIX) -> str:
    # Name fixed by Cheatcode's documented Redis channels: "agent_run:{id}:control".
    return f"{prefix}:{run_id}:control"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class RunEventMessage:
    """One entry of a run's event log as it travels: from the log to the bus, every subscriber and the transports
    (its stored row is models.RunEvent). `sequence` is 1, 2, 3, ... per run, without gaps; `seq` only in the bus's JSON
    between processes (a rolling deploy runs old and new processes on one bus: both must read it).

    `payload` must not be mutated after construction: `json_bytes` is cached.
    """

    run_id: str
    sequence: int
    type: str
    payload: dict[str, Any] = field(hash=False)
    created_at: str = field(default_factory=iso_now)  # the event log's form (clock.iso_z)

    @cached_property
    def json_bytes(self) -> bytes:
        return _dumps(
            {
                "run_id": self.run_id,
                "seq": self.sequence,
                "type": self.type,
                "payload": self.payload,
                "created_at": self.created_at,
            }
        )

    @property
    def is_terminal(self) -> bool:
        return self.type == "status" and self.payload.get("status") in TERMINAL_STATUSES

    @classmethod
    def from_json(cls, data: bytes) -> RunEventMessage:
        obj = json.loads(data)
        event = cls(
            run_id=str(obj["run_id"]),
            sequence=int(obj["seq"]),
            type=str(obj["type"]),
            payload=dict(obj.get("payload") or {}),
            created_at=str(obj.get("created_at") or ""),
        )
        # The received bytes are already the canonical form: never serialize them again.
        event.__dict__["json_bytes"] = bytes(data)
        return event


class ControlSignal(enum.StrEnum):
    END_STREAM = "END_STREAM"
    ERROR = "ERROR"
    STOP = "STOP"  # a request to the executor to stop the run; readers ignore it


@dataclass(frozen=True)
class ControlMessage:
    run_id: str
    signal: ControlSignal
    data: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @cached_property
    def json_bytes(self) -> bytes:
        return _dumps({"signal": self.signal.value, "data": dict(self.data)})

    @property
    def ends_stream(self) -> bool:
        return self.signal in (ControlSignal.END_STREAM, ControlSignal.ERROR)

    @classmethod
    def from_wire(cls, run_id: str, raw: bytes) -> ControlMessage | None:
        """Accepts our JSON form and the bare strings ("END_STREAM") other publishers send."""
        try:
            obj = json.loads(raw)
        except ValueError:
            obj = raw.decode(errors="replace").strip()
        if isinstance(obj, str):
            obj = {"signal": obj}
        try:
            return cls(run_id, ControlSignal(obj["signal"]), dict(obj.get("data") or {}))
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("ignoring unknown control message on run %s: %r", run_id, raw[:200])
            return None


@dataclass(frozen=True)
class StreamGap:
    """Live delivery may have missed events (bus reconnected): re-read the log after your cursor."""

    run_id: str
    reason: str = "reconnected"


BusItem = RunEventMessage | ControlMessage | StreamGap


class SlowConsumer(Exception):
    """The subscriber's bounded queue overflowed; it was cut off and must re-read the log."""


class SubscriptionClosed(Exception):
    """The subscription was closed (by its owner or because the bus stopped)."""
