"""Runs whose agent uses the project's sandbox: shell blocks and file directives in the prompt (the scripted
agent turns them into tool calls), tool_call/tool_result frames, recorded commands, tool failures that the
agent reads instead of crashing the run, and a stop during a long command. On the tuned server, whose
sandbox directory sandbox uids can reach (the session server's is under pytest's 0700 tmp)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.runs.conftest import TUNED_MAX_UPLOAD
from tests.runs.helpers import (
    POLL,
    assert_contiguous,
    assert_ends,
    events_after,
    make_thread,
    read_stream,
    start_run,
    wait_for_status,
)
from tests.support import UserHandle, gql

pytest.importorskip(
    "runplane.sandboxes.service", reason="the sandbox service (runplane/sandboxes/service.py) is not there yet"
)


def tools_of(frames: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    calls = [f for f in frames if f["type"] == "tool_call"]
    results = {f["tool_call_id"]: f for f in frames if f["type"] == "tool_result"}
    return [(call, results[call["tool_call_id"]]) for call in calls]


async def run_prompt(client: httpx.AsyncClient, user: UserHandle, prompt: str) -> tuple[str, list[dict[str, Any]]]:
    thread_id = await make_thread(client, user)
    run_id = (await start_run(client, user, thread_id, prompt=prompt))["agent_run_id"]
    return run_id, await read_stream(client, run_id, user.headers, timeout=60)


async def test_shell_block_runs_in_the_sandbox_and_is_recorded(
    tuned_client: httpx.AsyncClient, carol: UserHandle
) -> None:
    run_id, frames = await run_prompt(
        tuned_client, carol, "Please run:\n```sh\necho hello-from-run\necho oops >&2\nexit 3\n```\n"
    )
    assert_contiguous(frames)
    assert_ends(frames, "completed")
    [(call, result)] = tools_of(frames)
    assert call["tool"] == "shell" and call["arguments"]["command"].startswith("echo hello-from-run")
    assert result["tool"] == "shell" and result["exit_code"] == 3 and result["ok"] is False
    assert "hello-from-run" in result["result"] and "oops" in result["result"] and "[exit code 3]" in result["result"]
    order = [f["type"] for f in frames]
    assert order.index("tool_call") < order.index("tool_result") < len(order) - 1
    summary = "".join(f["content"] for f in frames[order.index("tool_result") :] if f["type"] == "content")
    assert "exited with code 3" in summary and "1 step(s) failed" in summary

    result = await gql(
        tuned_client,
        "query($id: ID!) { run(id: $id) { commands { command exitCode timedOut durationMs } } }",
        {"id": run_id},
        user=carol,
    )
    [command] = result["data"]["run"]["commands"]
    assert (
        command["command"].startswith("echo hello-from-run")
        and command["exitCode"] == 3
        and command["timedOut"] is False
    )


async def test_file_tools_write_read_and_list(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    prompt = "write file notes/hello.txt:\n```\nhi there\n```\nread file notes/hello.txt\nlist files notes\n"
    _, frames = await run_prompt(tuned_client, carol, prompt)
    assert_ends(frames, "completed")
    (write, wrote), (read, content), (listing_call, listing) = tools_of(frames)
    assert write["tool"] == "write_file" and write["arguments"] == {"path": "notes/hello.txt", "content": "hi there\n"}
    assert wrote["ok"] is True and "9 bytes" in wrote["result"]
    assert read["tool"] == "read_file" and content["result"] == "hi there\n"
    assert listing_call["tool"] == "list_files" and "notes/hello.txt" in listing["result"]


async def test_tool_failures_are_results_not_crashes(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    """A missing file, a path out of the workspace, a file over the size limit: the agent gets an error
    result and the run completes."""
    too_big = "x" * (TUNED_MAX_UPLOAD + 100)
    prompt = f"read file does/not/exist.txt\nread file ../../../etc/passwd\nwrite file big.txt:\n```\n{too_big}\n```\n"
    _, frames = await run_prompt(tuned_client, carol, prompt)
    assert_ends(frames, "completed")
    pairs = tools_of(frames)
    assert [call["tool"] for call, _ in pairs] == ["read_file", "read_file", "write_file"]
    assert "limit" in pairs[2][1]["result"]
    for _, result in pairs:
        assert result["ok"] is False and result["result"].startswith("error"), result
        assert "root:" not in result["result"]
    assert not any(f["type"] == "error" for f in frames)


async def test_stop_during_a_long_command(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt="```sh\nsleep 30\n```"))["agent_run_id"]
    reader = asyncio.create_task(read_stream(tuned_client, run_id, carol.headers, timeout=30))
    deadline = time.monotonic() + 20
    while not any(e["type"] == "tool_call" for e in await events_after(tuned_client, carol, run_id)):
        assert time.monotonic() < deadline, "the shell tool never started"
        await asyncio.sleep(POLL)
    await asyncio.sleep(0.3)  # the command is running now
    stopped_at = time.monotonic()
    assert (await tuned_client.post(f"/api/agent-run/{run_id}/stop", headers=carol.headers)).status_code == 200
    frames = await reader
    assert not any(f["type"] == "tool_result" for f in frames), "the command ended before the stop"
    assert time.monotonic() - stopped_at < 10, "the stop waited for the command"
    assert_ends(frames, "stopped")
    await wait_for_status(tuned_client, carol, run_id, "stopped")
