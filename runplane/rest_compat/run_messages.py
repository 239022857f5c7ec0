"""The original backend's message dialect of a run stream (`?dialect=cheatcode`, or RUNPLANE_REST_DIALECT).

Cheatcode's web app (frontend/src/hooks/useAgentStream.ts, lib/api/agents.ts `streamAgent`) keeps only frames of
type assistant|user|tool|system whose `content` and `metadata` are JSON *strings*, shows `metadata.stream_status`
"chunk" frames as streaming text and adds "complete" ones (with a message_id) to the chat, and finalizes on a
`status` row whose content says `thread_run_end`, or on `{"type": "status", "status": "completed"}`. Each runplane
event becomes none, one or several such frames:

  content                 -> assistant chunk (message_id null, `sequence`)
  tool_call               -> the finished assistant message (complete), then status tool_started
  tool_result             -> a tool message (name, result, and the original's tool_execution)
  status running          -> status thread_run_start
  status completed        -> complete message, status thread_run_end, {"type": "status", "status": "completed", ...}
  status stopped          -> complete message, status thread_run_end, {"type": "status", "status": "STOP"}
  status failed           -> complete message, status error, {"type": "status", "status": "error", "message"},
                             status thread_run_end, {"type": "status", "status": "ERROR"}

so every terminal status ends the web app's stream: it closes on thread_run_end, and a reconnect after the last
event is answered 204 (rest_compat/agent_runs.py), which stops any EventSource. Frames carry no `event:` line (the
original sent none); the last frame of an event carries `id: <seq>`, so Last-Event-ID resumes as in runplane's own
dialect. The control frames keep Python's default JSON spacing: one check in the web app matches them as text.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from runplane.events.types import TERMINAL_STATUSES, RunEventMessage
from runplane.resolvers import agent_runs as ops
from runplane.statuses import RunStatus

COMPLETED = {"type": "status", "status": "completed", "message": "Agent run completed successfully"}


class MessageEncoder:
    """Frames of one run's events in the message dialect. Frames depend only on the run and the event (the
    completed message is read back from the log), so every client of the run shares them."""

    key = ("sse", "cheatcode-messages")

    def __init__(self, thread_id: str) -> None:
        self.thread_id = thread_id

    async def __call__(self, event: RunEventMessage) -> bytes:
        frames = await self.frames(event)
        return b"".join(_sse(frame, event.sequence if last else None) for last, frame in _mark_last(frames))

    async def frames(self, event: RunEventMessage) -> list[dict[str, Any]]:
        payload, kind = event.payload, event.type
        if kind == "content":
            return [self._chunk(event)]
        if kind == "tool_call":
            return [*await self._completed_message(event), self._status(event, "tool_started", **_tool_fields(payload))]
        if kind == "tool_result":
            return [self._tool_message(event)]
        if kind == "status" and payload.get("status") == RunStatus.RUNNING:
            return [self._status(event, "thread_run_start", thread_run_id=event.run_id)]
        if kind == "status" and payload.get("status") in TERMINAL_STATUSES:
            return [*await self._completed_message(event), *self._run_end(event)]
        return []  # queued, paused, error (the terminal status that follows says it), anything newer

    def _row(
        self,
        event: RunEventMessage,
        kind: str,
        content: dict[str, Any],
        metadata: dict[str, Any],
        message_id: str | None,
    ) -> dict[str, Any]:
        """A message row as the original stored and streamed it: content and metadata JSON-encoded."""
        return {
            "message_id": message_id,
            "thread_id": self.thread_id,
            "type": kind,
            "is_llm_message": kind in {"assistant", "tool"},
            "content": json.dumps(content, ensure_ascii=False),
            "metadata": json.dumps({"thread_run_id": event.run_id, **metadata}, ensure_ascii=False),
            "sequence": event.sequence,
            "created_at": event.created_at,
            "updated_at": event.created_at,
        }

    def _chunk(self, event: RunEventMessage) -> dict[str, Any]:
        content = {"role": "assistant", "content": str(event.payload.get("content", ""))}
        return self._row(event, "assistant", content, {"stream_status": "chunk"}, None)

    async def _completed_message(self, event: RunEventMessage) -> list[dict[str, Any]]:
        found = await ops.assistant_message_before(uuid.UUID(event.run_id), event.sequence)
        if found is None:
            return []
        message_id, text = found
        content = {"role": "assistant", "content": text, "tool_calls": None}
        return [self._row(event, "assistant", content, {"stream_status": "complete"}, _stable_id(message_id))]

    def _tool_message(self, event: RunEventMessage) -> dict[str, Any]:
        payload = event.payload
        fields = _tool_fields(payload)
        ok = bool(payload.get("ok", True))
        output = payload.get("result")
        result = {"success": ok, "output": output, "error": None if ok else output}
        content = {
            "role": "tool",
            "name": fields["function_name"],
            "content": output if isinstance(output, str) else json.dumps(output, ensure_ascii=False),
            **fields,
            "result": result,
            "tool_execution": {**fields, "result": result},
        }
        message_id = _stable_id(f"{event.run_id}:{event.sequence}")
        return self._row(event, "tool", content, {}, message_id)

    def _status(self, event: RunEventMessage, status_type: str, **details: Any) -> dict[str, Any]:
        return self._row(event, "status", {"status_type": status_type, **details}, {}, None)

    def _run_end(self, event: RunEventMessage) -> list[dict[str, Any]]:
        status = str(event.payload.get("status"))
        end = self._status(event, "thread_run_end")
        if status == RunStatus.COMPLETED:
            return [end, COMPLETED]
        if status == RunStatus.FAILED:
            message = str(event.payload.get("error") or "Agent run failed")
            return [
                self._status(event, "error", message=message),
                {"type": "status", "status": "error", "message": message},
                end,
                {"type": "status", "status": "ERROR"},
            ]
        return [end, {"type": "status", "status": "STOP"}]  # stopped


def _tool_fields(payload: dict[str, Any]) -> dict[str, Any]:
    name = str(payload.get("tool", ""))
    fields: dict[str, Any] = {
        "function_name": name,
        "xml_tag_name": name.replace("_", "-"),
        "tool_call_id": payload.get("tool_call_id"),
        "tool_index": 0,
    }
    if "arguments" in payload:
        fields["arguments"] = payload["arguments"]
    return fields


def _stable_id(source: str) -> str:
    """A UUID the same on every replay and process: the web app de-duplicates messages by message_id."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "runplane:" + source))


def _mark_last(frames: list[dict[str, Any]]) -> list[tuple[bool, dict[str, Any]]]:
    return [(index == len(frames) - 1, frame) for index, frame in enumerate(frames)]


def _sse(frame: dict[str, Any], event_id: int | None) -> bytes:
    data = json.dumps(frame, ensure_ascii=False)  # Python's default spacing: see the module's docstring
    return (f"id: {event_id}\n" if event_id is not None else "").encode() + f"data: {data}\n\n".encode()
