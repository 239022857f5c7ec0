"""Shared client-side helpers of the run tests: threads, runs, SSE parsing, waiting on a run."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support import UserHandle

TERMINAL = {"completed", "failed", "stopped", "cancelled"}
QUICK_PROMPT = "hello there"
# A prompt without commands: the scripted agent answers with its ~30-word introduction, streamed word by
# word (RUNPLANE_SCRIPTED_CHUNK_DELAY apart: ~2 s on the tuned server, long enough to act mid-run).
LONG_PROMPT = "please describe everything you can do, at length"
# Polling interval: the tuned server and the cluster keep the default 60 requests/min per user.
POLL = 0.15


async def make_thread(client: httpx.AsyncClient, user: UserHandle) -> str:
    """A new thread in the user's one test project (plans cap projects per user, not threads)."""
    key = f"project@{client.base_url}"
    if key not in user.extra:
        project = await client.post("/api/projects", json={"name": "runs"}, headers=user.headers)
        assert project.status_code in (200, 201), project.text
        user.extra[key] = project.json()["project_id"]
    thread = await client.post("/api/threads", json={"project_id": user.extra[key]}, headers=user.headers)
    assert thread.status_code in (200, 201), thread.text
    return str(thread.json()["thread_id"])


async def start_run(
    client: httpx.AsyncClient,
    user: UserHandle,
    thread_id: str,
    *,
    prompt: str | None = QUICK_PROMPT,
    model: str | None = None,
    key: str | None = None,
    expect: int = 200,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if prompt is not None:
        body["prompt"] = prompt
    if model is not None:
        body["model"] = model
    if key is not None:
        body["idempotency_key"] = key
    response = await client.post(f"/api/thread/{thread_id}/agent/start", json=body, headers=user.headers)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def get_run(client: httpx.AsyncClient, user: UserHandle, run_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/agent-run/{run_id}", headers=user.headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def wait_for_status(
    client: httpx.AsyncClient, user: UserHandle, run_id: str, statuses: set[str] | str, timeout: float = 20.0
) -> dict[str, Any]:
    wanted = {statuses} if isinstance(statuses, str) else statuses
    deadline = time.monotonic() + timeout
    while True:
        run = await get_run(client, user, run_id)
        if run["status"] in wanted:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} is {run['status']!r} after {timeout}s, wanted {sorted(wanted)}")
        await asyncio.sleep(POLL)


async def events_after(
    client: httpx.AsyncClient, user: UserHandle, run_id: str, after: int = 0
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/agent-run/{run_id}/events", params={"after": after}, headers=user.headers)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


# ---- SSE ----------------------------------------------------------------------------------------


@dataclass
class SSEMessage:
    """One dispatched SSE event, as an EventSource would see it (plus the comments before it)."""

    data: str
    event: str = "message"
    id: str | None = None
    comments: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.data)
        return value


class SSEParser:
    """The WHATWG event-stream parsing rules: fields, multi-line data, comments, blank-line dispatch."""

    def __init__(self) -> None:
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.comments: list[str] = []
        self.last_event_id: str | None = None
        self.retry_ms: int | None = None

    def feed_line(self, line: str) -> SSEMessage | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            self.comments.append(line[1:].strip())
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SSEMessage | None:
        if self._id is not None:
            self.last_event_id = self._id
        if not self._data:
            self._event, self._id = "", None
            return None
        message = SSEMessage("\n".join(self._data), self._event or "message", self._id, self.comments)
        self._data, self._event, self._id, self.comments = [], "", None, []
        return message


async def sse_messages(response: httpx.Response) -> AsyncIterator[SSEMessage]:
    parser = SSEParser()
    async for line in response.aiter_lines():
        message = parser.feed_line(line)
        if message is not None:
            yield message


async def read_stream(
    client: httpx.AsyncClient,
    run_id: str,
    headers: dict[str, str],
    *,
    params: dict[str, Any] | None = None,
    timeout: float = 30.0,
) -> list[dict[str, Any]]:
    """All frames of one SSE connection, until the server ends it."""

    async def read() -> list[dict[str, Any]]:
        frames: list[dict[str, Any]] = []
        async with client.stream("GET", f"/api/agent-run/{run_id}/stream", headers=headers, params=params) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            async for message in sse_messages(response):
                frames.append(message.json())
        return frames

    return await asyncio.wait_for(read(), timeout)


def assert_contiguous(frames: list[dict[str, Any]], first: int = 1) -> None:
    sequences = [f["sequence"] for f in frames]
    assert sequences == list(range(first, first + len(frames))), sequences


def assert_ends(frames: list[dict[str, Any]], status: str) -> None:
    assert frames, "no frames"
    last = frames[-1]
    assert last["type"] == "status" and last["status"] == status, last
