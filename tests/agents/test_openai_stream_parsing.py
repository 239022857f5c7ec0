"""Pure parsing of the chat-completions stream: the quirks of real servers, without a network."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from runplane.agents.providers import (
    ContentDelta,
    Finished,
    ModelProviderError,
    ProviderEvent,
    ToolCall,
    ToolCallRequest,
    Usage,
    UsageReport,
)
from runplane.agents.providers.openai_compatible import error_from_response, parse_retry_after
from runplane.agents.providers.openai_stream import StreamAssembler


def feed(assembler: StreamAssembler, *chunks: dict[str, Any] | str) -> list[ProviderEvent]:
    events: list[ProviderEvent] = []
    for chunk in chunks:
        line = chunk if isinstance(chunk, str) else "data: " + json.dumps(chunk)
        events += assembler.feed_line(line)
    return events


def delta(payload: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": payload, "finish_reason": finish}]}


def test_comments_blank_lines_and_done_are_not_events() -> None:
    assembler = StreamAssembler()

    events = feed(assembler, ": OPENROUTER PROCESSING", "", delta({"content": "hi"}), "data: [DONE]")

    assert events == [ContentDelta("hi")] and assembler.done
    assert assembler.finish() == [Finished("stop")]


def test_tool_call_without_id_gets_one_and_repeated_name_is_not_doubled() -> None:
    def fragment(arguments: str) -> dict[str, Any]:
        function = {"name": "shell", "arguments": arguments}
        return delta({"tool_calls": [{"index": 0, "function": function}]})

    assembler = StreamAssembler()
    feed(
        assembler,
        fragment('{"co'),
        fragment('mmand": "ls"}'),
        delta({}, finish="tool_calls"),
    )

    assert assembler.finish() == [
        ToolCallRequest(ToolCall("call_0", "shell", {"command": "ls"}, '{"command": "ls"}')),
        Finished("tool_calls"),
    ]


def test_arguments_sent_as_an_object_are_accepted() -> None:
    assembler = StreamAssembler()
    feed(
        assembler,
        delta(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "list_files", "arguments": {"path": "."}}},
                ]
            }
        ),
        "data: [DONE]",
    )

    (request, _) = assembler.finish()
    assert isinstance(request, ToolCallRequest) and request.call.arguments == {"path": "."}


def test_usage_is_taken_from_the_last_chunk_that_has_it() -> None:
    assembler = StreamAssembler()
    feed(
        assembler,
        delta({"content": "x"}, finish="length"),
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9}},
        "data: [DONE]",
    )

    assert assembler.finish() == [UsageReport(Usage(5, 9, 14)), Finished("length")]


def test_stream_without_finish_or_done_is_an_error() -> None:
    assembler = StreamAssembler()
    feed(assembler, delta({"content": "cut"}))

    with pytest.raises(ModelProviderError) as caught:
        assembler.finish()
    assert caught.value.retryable


def test_in_stream_error_chunk_raises() -> None:
    with pytest.raises(ModelProviderError) as caught:
        feed(StreamAssembler(), {"error": {"code": 429, "message": "rate limited upstream"}})

    assert (caught.value.status, caught.value.retryable) == (429, True)


def test_retry_after_seconds_and_http_date() -> None:
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)

    assert parse_retry_after("7") == 7.0
    assert 8.0 <= (parse_retry_after(in_ten) or 0) <= 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_openai_insufficient_quota_429_is_not_retryable() -> None:
    error_body = {"message": "You exceeded your quota", "code": "insufficient_quota"}
    body = json.dumps({"error": error_body})

    error = error_from_response(429, {}, body)

    assert error.status == 429 and not error.retryable and "quota" in error.message
