"""A run driven end to end through the OpenAI-compatible provider: the tuned server's RUNPLANE_MODEL_PROVIDER
is `openai`, pointed at the local fake server (real HTTP, streamed chunks, a usage chunk)."""

from __future__ import annotations

import asyncio

import httpx

from tests.fakes.openai_server import FakeOpenAIServer, ScriptedToolCall, Turn
from tests.runs.conftest import FAKE_OPENAI_KEY
from tests.runs.helpers import (
    assert_contiguous,
    assert_ends,
    get_run,
    make_thread,
    read_stream,
    sse_messages,
    start_run,
)
from tests.support import UserHandle

USAGE = {"prompt_tokens": 321, "completion_tokens": 45, "total_tokens": 366}


async def test_streamed_reply_and_usage_of_a_real_http_model(
    tuned_client: httpx.AsyncClient, carol: UserHandle, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.turns.clear()
    fake_openai.add_turn(
        Turn(content=["Hel", "lo ", "from ", "the ", "fake ", "model."], usage=dict(USAGE), chunk_delay=0.02)
    )
    before = len(fake_openai.chat_requests())
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt="say hello", model="some/model"))["agent_run_id"]
    frames = await read_stream(tuned_client, run_id, carol.headers)
    assert_contiguous(frames)
    assert_ends(frames, "completed")
    assert "".join(f["content"] for f in frames if f["type"] == "content") == "Hello from the fake model."

    run = await get_run(tuned_client, carol, run_id)
    assert run["model"] == "some/model"
    assert run["usage"] == USAGE  # from the stream's usage chunk, not estimated

    request = fake_openai.chat_requests()[before]
    assert request.authorization == f"Bearer {FAKE_OPENAI_KEY}"
    assert request.body["model"] == "some/model" and request.body["stream"] is True
    assert request.body["stream_options"] == {"include_usage": True}
    assert request.messages[0]["role"] == "system"
    assert request.messages[-1] == {"role": "user", "content": "say hello"}
    assert {t["function"]["name"] for t in request.tools} >= {"shell", "read_file", "write_file", "list_files"}


async def test_provider_error_fails_the_run_with_an_error_event(
    tuned_client: httpx.AsyncClient, carol: UserHandle, fake_openai: FakeOpenAIServer
) -> None:
    fake_openai.turns.clear()
    fake_openai.fail_next(400, message="model some/missing does not exist")  # not retryable
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt="hi", model="some/missing"))["agent_run_id"]
    frames = await read_stream(tuned_client, run_id, carol.headers)
    assert_ends(frames, "failed")
    error = next(f for f in frames if f["type"] == "error")
    assert "does not exist" in error["error"]
    run = await get_run(tuned_client, carol, run_id)
    assert run["status"] == "failed" and "does not exist" in run["error"]


async def test_models_available_lists_the_remote_catalogue(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    models = (await tuned_client.get("/api/models/available", headers=carol.headers)).json()["models"]
    ids = {m["id"] for m in models}
    assert {"scripted/demo", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4"} <= ids


def add_usage(*usages: dict[str, int]) -> dict[str, int]:
    return {k: sum(u[k] for u in usages) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


async def test_tool_call_turn_then_answer_sums_the_usage_of_both_calls(
    tuned_client: httpx.AsyncClient, carol: UserHandle, fake_openai: FakeOpenAIServer
) -> None:
    """A streamed tool call (fragmented arguments) for a tool the agent lacks: the error goes back to the
    model as the tool result, which needs no sandbox; the run's usage is the sum of both model calls."""
    first = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    second = {"prompt_tokens": 150, "completion_tokens": 20, "total_tokens": 170}
    fake_openai.turns.clear()
    fake_openai.add_turn(
        Turn(
            content=["Let me look."],
            tool_calls=[ScriptedToolCall("search_web", {"query": "runplane docs"}, id="call_1", fragments=4)],
            usage=first,
        ),
        Turn(content=["No such tool; ", "answering directly."], usage=second),
    )
    before = len(fake_openai.chat_requests())
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt="find the docs", model="some/model"))[
        "agent_run_id"
    ]
    frames = await read_stream(tuned_client, run_id, carol.headers)
    assert_ends(frames, "completed")
    call = next(f for f in frames if f["type"] == "tool_call")
    assert (
        call["tool"] == "search_web"
        and call["arguments"] == {"query": "runplane docs"}
        and call["tool_call_id"] == "call_1"
    )
    result = next(f for f in frames if f["type"] == "tool_result")
    assert result["tool_call_id"] == "call_1" and result["ok"] is False and "unknown tool" in result["result"]
    assert (await get_run(tuned_client, carol, run_id))["usage"] == add_usage(first, second)
    # The second request carried the assistant's tool call and the tool's answer back to the model.
    followup = fake_openai.chat_requests()[before + 1].messages
    assert (
        followup[-2]["tool_calls"][0]["id"] == "call_1"
        and followup[-1]["role"] == "tool"
        and followup[-1]["tool_call_id"] == "call_1"
    )


async def test_stopped_run_still_records_the_usage_of_finished_model_calls(
    tuned_client: httpx.AsyncClient, carol: UserHandle, fake_openai: FakeOpenAIServer
) -> None:
    first = {"prompt_tokens": 70, "completion_tokens": 5, "total_tokens": 75}
    fake_openai.turns.clear()
    fake_openai.add_turn(
        Turn(tool_calls=[ScriptedToolCall("search_web", {"query": "x"})], usage=first),
        Turn(content=[f"word{i} " for i in range(60)], chunk_delay=0.1),  # ~6 s: stopped long before its usage chunk
    )
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt="go", model="some/model"))["agent_run_id"]
    frames: list[dict[str, object]] = []
    async with (
        asyncio.timeout(30),
        tuned_client.stream("GET", f"/api/agent-run/{run_id}/stream", headers=carol.headers) as response,
    ):
        async for message in sse_messages(response):
            frames.append(message.json())
            if frames[-1]["type"] == "content" and not any(f["type"] == "content" for f in frames[:-1]):
                stop = await tuned_client.post(f"/api/agent-run/{run_id}/stop", headers=carol.headers)
                assert stop.status_code == 200
    assert frames[-1]["type"] == "status" and frames[-1]["status"] == "stopped", frames[-3:]
    assert sum(f["type"] == "content" for f in frames) < 30  # cut short, not streamed to its end
    assert (await get_run(tuned_client, carol, run_id))["usage"] == first
