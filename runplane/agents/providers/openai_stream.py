"""Pure parsing of the OpenAI chat-completions streaming format (no I/O, unit-testable).

A stream is SSE events (decoded by httpx-sse, which joins an event's `data:` lines), each a JSON chunk, ended
by `data: [DONE]`. Tool calls arrive
as deltas keyed by `index`: the first delta for an index carries `id` and `function.name`,
later ones carry fragments of `function.arguments`, possibly interleaved across indexes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .base import (
    ContentDelta,
    Finished,
    ModelProviderError,
    ProviderEvent,
    ToolCall,
    ToolCallRequest,
    Usage,
    UsageReport,
)


def parse_arguments(raw: str) -> dict[str, Any]:
    """Decode tool arguments; anything but a JSON object becomes {} (raw is kept by the caller)."""
    if not raw.strip():
        return {}  # tools without parameters legitimately send ""
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def parse_usage(data: Any) -> Usage | None:
    """Token counts; a count that is not a whole non-negative number is the provider's error (not a ValueError
    half-way through a run)."""
    if not isinstance(data, dict):
        return None
    prompt = _count(data, "prompt_tokens")
    completion = _count(data, "completion_tokens")
    total = _count(data, "total_tokens") or prompt + completion
    return Usage(prompt, completion, total)


def _count(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ModelProviderError(f"malformed usage from the model server: {key}={value!r:.100}", retryable=False)
    return value


@dataclass(slots=True)
class _PartialToolCall:
    index: int
    id: str = ""
    name: str = ""
    fragments: list[str] = field(default_factory=list)

    def merge(self, delta: dict[str, Any]) -> None:
        self.id = self.id or str(delta.get("id") or "")
        function = delta.get("function") or {}
        # First name wins: some servers repeat the full name on every delta, so appending
        # would double it.
        self.name = self.name or str(function.get("name") or "")
        arguments = function.get("arguments")
        if isinstance(arguments, dict):  # a few servers send the decoded object at once
            arguments = json.dumps(arguments)
        if arguments:
            self.fragments.append(str(arguments))

    def finish(self) -> ToolCall:
        raw = "".join(self.fragments)
        # Some servers (older Ollama) omit ids; the executor still needs one to pair results.
        call_id = self.id or f"call_{self.index}"
        return ToolCall(call_id, self.name, parse_arguments(raw), raw)


class StreamAssembler:
    """Turns SSE lines into ProviderEvents; keeps per-stream state between lines."""

    def __init__(self) -> None:
        self._tools: dict[int, _PartialToolCall] = {}
        self._usage: Usage | None = None
        self.finish_reason: str | None = None
        self.done = False

    def feed_line(self, line: str) -> list[ProviderEvent]:
        """One `data:` line as a whole event (tests; the client decodes events with httpx-sse)."""
        # Blank lines separate events; ":" lines are SSE comments (OpenRouter keep-alives).
        if not line.startswith("data:"):
            return []
        return self.feed_data(line[5:])

    def feed_data(self, data: str) -> list[ProviderEvent]:
        """The data of one SSE event (its `data:` lines joined by newlines)."""
        payload = data.strip()
        if payload == "[DONE]":
            self.done = True
            return []
        if not payload:
            return []
        try:
            chunk = json.loads(payload)
        except ValueError as exc:
            raise ModelProviderError(f"invalid stream chunk: {payload[:200]}", retryable=True) from exc
        if not isinstance(chunk, dict):
            raise ModelProviderError(f"invalid stream chunk (not an object): {payload[:200]}", retryable=True)
        try:
            return self.feed_chunk(chunk)
        except (TypeError, ValueError, AttributeError) as exc:  # fields of the wrong JSON type
            raise ModelProviderError(f"malformed stream chunk: {payload[:200]}", retryable=False) from exc

    def feed_chunk(self, chunk: dict[str, Any]) -> list[ProviderEvent]:
        if "error" in chunk:
            raise _stream_error(chunk["error"])
        self._usage = parse_usage(chunk.get("usage")) or self._usage
        events: list[ProviderEvent] = []
        for choice in chunk.get("choices") or []:
            events.extend(self._feed_choice(choice))
        return events

    def _feed_choice(self, choice: dict[str, Any]) -> list[ProviderEvent]:
        delta = choice.get("delta") or {}
        events: list[ProviderEvent] = []
        if delta.get("content"):
            events.append(ContentDelta(str(delta["content"])))
        for position, tool_delta in enumerate(delta.get("tool_calls") or []):
            index = int(tool_delta.get("index", position))
            self._tools.setdefault(index, _PartialToolCall(index)).merge(tool_delta)
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        return events

    def finish(self) -> list[ProviderEvent]:
        """Flush at end of stream: tool calls (in index order), usage, then Finished."""
        if not self.done and self.finish_reason is None:
            raise ModelProviderError("stream ended before completion", retryable=True)
        events: list[ProviderEvent] = [ToolCallRequest(self._tools[i].finish()) for i in sorted(self._tools)]
        if self._usage is not None:
            events.append(UsageReport(self._usage))
        reason = self.finish_reason or ("tool_calls" if self._tools else "stop")
        events.append(Finished(reason))
        return events


def _stream_error(error: Any) -> ModelProviderError:
    """An error reported inside the stream (OpenRouter does this after a 200 response)."""
    if not isinstance(error, dict):
        return ModelProviderError(str(error), retryable=False)
    code = error.get("code")
    status = code if isinstance(code, int) else None
    retryable = status is not None and (status == 429 or status >= 500)
    return ModelProviderError(str(error.get("message") or error), status, retryable)
