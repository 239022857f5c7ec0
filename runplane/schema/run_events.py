"""Run events on GraphQL: `RunEvent` (sequence, type, time, raw payload) and its typed `data`.

`payload: JSON` stays for the clients that read it; `data` is the same event as one member of the
`RunEventData` union, so a frontend renders it with generated types. Each member reads the payload the
engine writes (agents/loop.py, agents/lifecycle.py); a payload that does not fit gives `data: null`, never
an error, since the log may hold events older than this code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from runplane import models
from runplane.events.types import RunEventMessage
from runplane.schema.connections import RowBacked, row_fields
from runplane.schema.enums import RunEventType, RunStatus


@strawberry.type(description="Text the agent streamed (content deltas of one message share messageId).")
class ContentEvent:
    content: str
    message_id: str | None


@strawberry.type(description="The agent called a tool; its ToolResultEvent has the same toolCallId.")
class ToolCallEvent:
    tool: str
    tool_call_id: str | None
    arguments: JSON | None


@strawberry.type(description="What a tool call gave back (ok: false when it failed; result says why).")
class ToolResultEvent:
    tool: str
    tool_call_id: str | None
    ok: bool
    result: str


@strawberry.type(description="The run changed status; the run's last event is a StatusEvent with a final status.")
class StatusEvent:
    status: RunStatus
    error: str | None


@strawberry.type(description="The run failed (a StatusEvent with status failed follows).")
class ErrorEvent:
    message: str


TypedEvent = ContentEvent | ToolCallEvent | ToolResultEvent | StatusEvent | ErrorEvent
RunEventData = Annotated[
    TypedEvent,
    strawberry.union("RunEventData", description="A run event's payload, typed by the event's type."),
]


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _content(p: Mapping[str, Any]) -> ContentEvent | None:
    content = _text(p.get("content"))
    return None if content is None else ContentEvent(content=content, message_id=_text(p.get("message_id")))


def _tool_call(p: Mapping[str, Any]) -> ToolCallEvent | None:
    tool = _text(p.get("tool"))
    if tool is None:
        return None
    return ToolCallEvent(tool=tool, tool_call_id=_text(p.get("tool_call_id")), arguments=p.get("arguments"))


def _tool_result(p: Mapping[str, Any]) -> ToolResultEvent | None:
    tool, result = _text(p.get("tool")), p.get("result")
    if tool is None or result is None:
        return None
    return ToolResultEvent(
        tool=tool, tool_call_id=_text(p.get("tool_call_id")), ok=p.get("ok") is not False, result=str(result)
    )


def _status(p: Mapping[str, Any]) -> StatusEvent | None:
    status = p.get("status")
    if not isinstance(status, str) or status not in _STATUSES:
        return None
    return StatusEvent(status=RunStatus(status), error=_text(p.get("error")))


_STATUSES = frozenset(RunStatus)


def _error(p: Mapping[str, Any]) -> ErrorEvent | None:
    message = p.get("error")
    return None if message is None else ErrorEvent(message=str(message))


TYPED: dict[str, Callable[[Mapping[str, Any]], TypedEvent | None]] = {
    RunEventType.CONTENT: _content,
    RunEventType.TOOL_CALL: _tool_call,
    RunEventType.TOOL_RESULT: _tool_result,
    RunEventType.STATUS: _status,
    RunEventType.ERROR: _error,
}


def typed_data(type: str, payload: object) -> TypedEvent | None:
    make = TYPED.get(type)
    return make(payload) if make is not None and isinstance(payload, Mapping) else None


@strawberry.type
class RunEvent(RowBacked):
    sequence: int
    type: RunEventType
    created_at: datetime
    payload: JSON  # the event as the REST stream sends it; `data` gives it typed
    _row: strawberry.Private[models.RunEvent | None]

    @classmethod
    def from_event(cls, event: RunEventMessage) -> RunEvent:
        created_at = datetime.fromisoformat(event.created_at)
        return cls(
            sequence=event.sequence,
            type=RunEventType(event.type),
            created_at=created_at,
            payload=JSON(event.payload),
            _row=None,
        )

    @strawberry.field(description="The payload typed by the event's type; null for a payload this server cannot read.")
    def data(self) -> RunEventData | None:
        return typed_data(self.type, self.payload)


row_fields(
    RunEvent,
    sequence=lambda row: row.sequence,
    type=lambda row: row.type,
    created_at=lambda row: row.created_at,
    payload=lambda row: dict(row.payload),
)
