"""OpenAICompatibleProvider against a real local server speaking the streaming protocol."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runplane.agents.providers import (
    ChatMessage,
    ContentDelta,
    Finished,
    ModelProviderError,
    OpenAICompatibleProvider,
    RetryPolicy,
    ToolCall,
    ToolCallRequest,
    ToolSpec,
    Usage,
    UsageReport,
    collect,
)
from tests.agents.provider_support import API_KEY, SleepRecorder
from tests.fakes.openai_server import FakeOpenAIServer, ScriptedToolCall, Turn

SHELL = ToolSpec(
    "shell",
    "Run a shell command in the sandbox",
    {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
)
HELLO = [ChatMessage("system", "You are terse."), ChatMessage("user", "Say hello")]


async def test_streams_content_in_order_then_usage_then_finished(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    usage = {"prompt_tokens": 21, "completion_tokens": 3, "total_tokens": 24}
    openai_server.add_turn(Turn(content=["Hel", "lo ", "world"], usage=usage))

    reply = await collect(provider.stream_chat(HELLO, [], "openai/gpt-4o-mini"))

    assert reply.events == [
        ContentDelta("Hel"),
        ContentDelta("lo "),
        ContentDelta("world"),
        UsageReport(Usage(21, 3, 24)),
        Finished("stop"),
    ]
    assert reply.content == "Hello world"


async def test_request_carries_key_headers_model_and_stream_options(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.add_turn(Turn(content=["ok"]))

    await collect(provider.stream_chat(HELLO, [SHELL], "m1", max_tokens=50, temperature=0.2))

    (request,) = openai_server.chat_requests()
    assert request.authorization == f"Bearer {API_KEY}"
    assert request.headers["x-title"] == "runplane-tests"
    assert request.body["model"] == "m1"
    assert request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.body["max_tokens"] == 50 and request.body["temperature"] == 0.2
    assert request.messages == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Say hello"},
    ]
    assert request.tools == [
        {
            "type": "function",
            "function": {
                "name": "shell",
                "description": SHELL.description,
                "parameters": SHELL.parameters,
            },
        }
    ]


async def test_tool_call_fragments_across_chunks_become_one_call(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    arguments = {"command": "ls -la && cat README.md", "timeout": 30}
    openai_server.add_turn(
        Turn(
            content=["Let me look."],
            tool_calls=[ScriptedToolCall("shell", arguments, id="call_abc", fragments=6)],
        )
    )

    reply = await collect(provider.stream_chat(HELLO, [SHELL], "m"))

    assert reply.tool_calls == [ToolCall("call_abc", "shell", arguments, json.dumps(arguments))]
    assert [type(e) for e in reply.events] == [
        ContentDelta,
        ToolCallRequest,
        UsageReport,
        Finished,
    ]
    assert reply.finish_reason == "tool_calls"


async def test_parallel_tool_calls_interleaved_are_assembled_by_index(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    first = {"command": "npm install --no-audit"}
    second = {"path": "src/app.ts"}
    openai_server.add_turn(
        Turn(
            interleave=True,
            tool_calls=[
                ScriptedToolCall("shell", first, id="call_1", fragments=4),
                ScriptedToolCall("read_file", second, id="call_2", fragments=3),
            ],
        )
    )

    reply = await collect(provider.stream_chat(HELLO, [SHELL], "m"))

    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("call_1", "shell", first),
        ("call_2", "read_file", second),
    ]


async def test_malformed_arguments_keep_raw_string_instead_of_crashing(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.add_turn(
        Turn(
            tool_calls=[
                ScriptedToolCall("shell", '{"command": "echo hi', id="bad"),
                ScriptedToolCall("shell", '["not", "an", "object"]', id="list"),
            ]
        )
    )

    reply = await collect(provider.stream_chat(HELLO, [SHELL], "m"))

    assert reply.tool_calls == [
        ToolCall("bad", "shell", {}, '{"command": "echo hi'),
        ToolCall("list", "shell", {}, '["not", "an", "object"]'),
    ]


async def test_missing_usage_means_no_usage_report(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.add_turn(Turn(content=["hi"], usage=None))

    reply = await collect(provider.stream_chat(HELLO, [], "m"))

    assert reply.usage is None and reply.finish_reason == "stop"


async def test_conversation_with_tool_results_is_sent_in_openai_shape(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.add_turn(Turn(content=["done"]))
    call = ToolCall("call_1", "shell", {"command": "ls"}, '{"command": "ls"}')
    broken = ToolCall("call_2", "shell", {}, '{"command": ')
    history = [
        *HELLO,
        ChatMessage("assistant", None, tool_calls=[call, broken]),
        ChatMessage("tool", '{"exit_code": 0}', tool_call_id="call_1"),
        ChatMessage("tool", "invalid arguments", tool_call_id="call_2"),
    ]

    await collect(provider.stream_chat(history, [SHELL], "m"))

    assistant, result, _ = openai_server.chat_requests()[0].messages[2:]
    wire_call = {"name": "shell", "arguments": call.raw_arguments}
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": wire_call},
            # malformed arguments are echoed as {} so strict upstreams accept the history
            {"id": "call_2", "type": "function", "function": {"name": "shell", "arguments": "{}"}},
        ],
    }
    assert result == {"role": "tool", "content": '{"exit_code": 0}', "tool_call_id": "call_1"}


# ---- errors and retries ------------------------------------------------------------------------


async def test_429_is_retried_after_the_retry_after_delay(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, sleeps: SleepRecorder
) -> None:
    openai_server.fail_next(429, retry_after="3")
    openai_server.add_turn(Turn(content=["finally"]))

    reply = await collect(provider.stream_chat(HELLO, [], "m"))

    assert reply.content == "finally"
    assert sleeps.delays == [3.0]
    assert len(openai_server.chat_requests()) == 2


async def test_5xx_is_retried_with_growing_backoff(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, sleeps: SleepRecorder
) -> None:
    openai_server.fail_next(500, times=2)
    openai_server.add_turn(Turn(content=["ok"]))

    reply = await collect(provider.stream_chat(HELLO, [], "m"))

    assert reply.content == "ok"
    assert len(sleeps.delays) == 2
    assert 0.25 <= sleeps.delays[0] <= 0.5 and 0.5 <= sleeps.delays[1] <= 1.0


async def test_retries_are_bounded(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, sleeps: SleepRecorder
) -> None:
    openai_server.fail_next(503, times=5)

    with pytest.raises(ModelProviderError) as caught:
        await collect(provider.stream_chat(HELLO, [], "m"))

    assert (caught.value.status, caught.value.retryable) == (503, True)
    assert len(openai_server.chat_requests()) == 3  # first try + RetryPolicy.max_retries
    assert len(sleeps.delays) == 2


async def test_retry_after_longer_than_allowed_is_surfaced_not_slept(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider, sleeps: SleepRecorder
) -> None:
    openai_server.fail_next(429, retry_after="3600")

    with pytest.raises(ModelProviderError) as caught:
        await collect(provider.stream_chat(HELLO, [], "m"))

    assert caught.value.retry_after == 3600.0 and caught.value.retryable
    assert sleeps.delays == []


async def test_401_is_not_retryable(openai_server: FakeOpenAIServer, sleeps: SleepRecorder) -> None:
    async with OpenAICompatibleProvider(openai_server.base_url, "sk-wrong", sleep=sleeps) as bad:
        with pytest.raises(ModelProviderError) as caught:
            await collect(bad.stream_chat(HELLO, [], "m"))

    assert (caught.value.status, caught.value.retryable) == (401, False)
    assert "No auth credentials" in caught.value.message
    assert len(openai_server.chat_requests()) == 1 and sleeps.delays == []


async def test_403_is_not_retryable(openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider) -> None:
    openai_server.fail_next(403)

    with pytest.raises(ModelProviderError) as caught:
        await collect(provider.stream_chat(HELLO, [], "m"))

    assert (caught.value.status, caught.value.retryable) == (403, False)


async def test_error_after_output_is_raised_not_retried(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    error = {"code": 502, "message": "upstream provider disconnected"}
    openai_server.add_turn(Turn(content=["partial "], error_after_content=error))
    openai_server.add_turn(Turn(content=["must not be requested"]))
    seen: list[object] = []

    with pytest.raises(ModelProviderError) as caught:
        async for event in provider.stream_chat(HELLO, [], "m"):
            seen.append(event)

    assert seen == [ContentDelta("partial ")]
    assert caught.value.status == 502 and "disconnected" in caught.value.message
    assert len(openai_server.chat_requests()) == 1


async def test_stream_cut_before_any_output_is_retried(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    openai_server.add_turn(Turn(truncate_after_content=True), Turn(content=["second try"]))

    reply = await collect(provider.stream_chat(HELLO, [], "m"))

    assert reply.content == "second try"
    assert len(openai_server.chat_requests()) == 2


async def test_read_timeout_becomes_retryable_provider_error(
    openai_server: FakeOpenAIServer,
) -> None:
    openai_server.add_turn(Turn(content=["late"], first_byte_delay=1.0))
    slow = OpenAICompatibleProvider(openai_server.base_url, API_KEY, timeout=0.2, retry=RetryPolicy(max_retries=0))

    with pytest.raises(ModelProviderError) as caught:
        await collect(slow.stream_chat(HELLO, [], "m"))
    await slow.aclose()

    assert caught.value.retryable and "timed out" in caught.value.message


async def test_unreachable_server_is_a_retryable_provider_error(sleeps: SleepRecorder) -> None:
    async with FakeOpenAIServer() as server:
        base_url = server.base_url  # a port that was just freed: nothing listens any more
    async with OpenAICompatibleProvider(base_url, sleep=sleeps, timeout=2.0) as gone:
        with pytest.raises(ModelProviderError) as caught:
            await gone.list_models()

    assert caught.value.retryable and caught.value.status is None
    assert len(sleeps.delays) == 2


# ---- catalogue and key ---------------------------------------------------------------------------


async def test_list_models_maps_openrouter_catalogue(
    openai_server: FakeOpenAIServer, provider: OpenAICompatibleProvider
) -> None:
    models = await provider.list_models()

    assert [m.id for m in models] == ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4"]
    first = models[0]
    assert (first.name, first.provider, first.context_length) == (
        "OpenAI: GPT-4o-mini",
        "openrouter",
        128000,
    )
    assert first.pricing == {"prompt": "0.00000015", "completion": "0.0000006"}
    (request,) = openai_server.requests
    assert (request.method, request.path, request.authorization) == (
        "GET",
        "/v1/models",
        f"Bearer {API_KEY}",
    )


async def test_list_models_accepts_bare_openai_and_vllm_entries(sleeps: SleepRecorder) -> None:
    models: list[dict[str, Any]] = [
        {"id": "llama3", "object": "model"},
        {"id": "qwen", "max_model_len": 32768},
    ]
    async with (
        FakeOpenAIServer(models=models) as server,
        OpenAICompatibleProvider(server.base_url, None, name="vllm") as local,
    ):
        listed = await local.list_models()

    assert [(m.id, m.name, m.context_length, m.pricing) for m in listed] == [
        ("llama3", "llama3", None, None),
        ("qwen", "qwen", 32768, None),
    ]
    assert server.requests[0].authorization is None  # no key, no header (Ollama, vLLM)


async def test_check_key_reports_ok_with_usage_and_limit(
    provider: OpenAICompatibleProvider,
) -> None:
    check = await provider.check_key()

    assert check.ok and check.status == "ok"
    assert (check.label, check.usage, check.limit) == ("sk-or-v1-abc...xyz", 1.25, 10.0)


async def test_check_key_reports_invalid_key(openai_server: FakeOpenAIServer) -> None:
    async with OpenAICompatibleProvider(openai_server.base_url, "sk-nope") as bad:
        check = await bad.check_key()

    assert not check.ok and check.status == "invalid"
