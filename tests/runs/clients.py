"""Real GraphQL subscription clients for the run tests: the npm `graphql-ws` client under node, the legacy
`graphql-ws` subprotocol (subscriptions-transport-ws) spoken with `websockets`, multipart HTTP and SSE."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

REPO = Path(__file__).resolve().parents[2]
SUBSCRIBE_JS = Path(__file__).with_name("js") / "subscribe.mjs"
EVENTSOURCE_JS = Path(__file__).with_name("js") / "eventsource.mjs"
RUN_EVENTS = "subscription($id: ID!, $after: Int!) { runEvents(runId: $id, after: $after) { sequence type payload } }"
OnEvent = Callable[[dict[str, Any]], Awaitable[None]]


def node_or_skip() -> str:
    """node plus the packages of package.json (`npm ci` at the repo root). Missing: skip, or fail in CI."""
    node = shutil.which("node")
    packages = ("graphql-ws", "ws", "eventsource", "graphql")
    installed = all((REPO / "node_modules" / name / "package.json").exists() for name in packages)
    if node and installed:
        return node
    message = "node test clients unavailable: " + (
        "node is not installed" if not node else "run `npm ci` at the repo root (package.json)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


async def run_node(
    script: Path, *args: str, on_line: OnEvent | None = None, timeout: float = 40.0
) -> tuple[list[dict[str, Any]], int]:
    """Runs a node client of tests/runs/js; returns (the JSON lines it printed, its exit code)."""
    node = node_or_skip()
    timeout_ms = str(int(timeout * 1000))
    proc = await asyncio.create_subprocess_exec(
        node,
        str(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=str(REPO),
        env={**os.environ, "SUBSCRIBE_TIMEOUT_MS": timeout_ms, "EVENTSOURCE_TIMEOUT_MS": timeout_ms},
    )
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout + 10):
            while raw := await proc.stdout.readline():
                line = json.loads(raw)
                lines.append(line)
                if on_line is not None:
                    await on_line(line)
            code = await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    stderr = (await proc.stderr.read()).decode(errors="replace")
    assert not stderr.strip() or code != 0, stderr  # a clean run writes nothing to stderr
    return lines, code


async def node_subscribe(
    ws_url: str, token: str, run_id: str, after: int = 0, *, on_event: OnEvent | None = None, timeout: float = 40.0
) -> tuple[list[dict[str, Any]], int]:
    """tests/runs/js/subscribe.mjs: the npm graphql-ws client on runEvents."""

    async def on_line(line: dict[str, Any]) -> None:
        if on_event is not None and "sequence" in line:
            await on_event(line)

    return await run_node(SUBSCRIBE_JS, ws_url, token, run_id, str(after), on_line=on_line, timeout=timeout)


async def node_eventsource(
    url: str, *, on_line: OnEvent | None = None, timeout: float = 40.0
) -> tuple[list[dict[str, Any]], int]:
    """tests/runs/js/eventsource.mjs: the npm eventsource client (reconnects by itself with Last-Event-ID)."""
    return await run_node(EVENTSOURCE_JS, url, on_line=on_line, timeout=timeout)


async def legacy_subscribe(
    ws_url: str, token: str, run_id: str, after: int = 0, *, on_event: OnEvent | None = None, timeout: float = 40.0
) -> list[dict[str, Any]]:
    """The legacy protocol: connection_init -> connection_ack, start -> data... -> complete ("ka" keep-alives)."""
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        async with websockets.connect(ws_url, subprotocols=["graphql-ws"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "graphql-ws"
            await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
            while (ack := json.loads(await ws.recv()))["type"] == "ka":
                pass
            assert ack["type"] == "connection_ack", ack
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "start",
                        "payload": {"query": RUN_EVENTS, "variables": {"id": run_id, "after": after}},
                    }
                )
            )
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "ka":
                    continue
                assert message.get("id") == "1", message
                if message["type"] == "complete":
                    return events
                assert message["type"] == "data" and "errors" not in message["payload"], message
                event = message["payload"]["data"]["runEvents"]
                events.append(event)
                if on_event is not None:
                    await on_event(event)


async def multipart_subscribe(
    client: httpx.AsyncClient, token: str, run_id: str, after: int = 0, timeout: float = 30.0
) -> tuple[list[dict[str, Any]], int]:
    """GraphQL over HTTP multipart (`Accept: multipart/mixed;subscriptionSpec="1.0"`): (events, heartbeats)."""
    body = {"query": RUN_EVENTS, "variables": {"id": run_id, "after": after}}
    headers = {"Authorization": f"Bearer {token}", "Accept": 'multipart/mixed;subscriptionSpec="1.0", application/json'}
    events: list[dict[str, Any]] = []
    heartbeats = 0
    async with asyncio.timeout(timeout):
        async with client.stream("POST", "/graphql", json=body, headers=headers) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            content_type = response.headers["content-type"]
            assert content_type.startswith("multipart/mixed") and "boundary=" in content_type, content_type
            raw = (await response.aread()).decode()
    boundary = "--" + content_type.split("boundary=", 1)[1].split(";", 1)[0].strip('"')
    assert raw.rstrip().endswith(boundary + "--"), raw[-200:]
    for part in raw.split(boundary)[1:]:
        if part.strip() in ("", "--"):
            continue
        head, _, payload = part.partition("\r\n\r\n")
        assert "application/json" in head.lower(), head
        message = json.loads(payload)
        if message == {}:
            heartbeats += 1
            continue
        assert "errors" not in message["payload"], message
        events.append(message["payload"]["data"]["runEvents"])
    return events, heartbeats


async def graphql_sse_subscribe(
    client: httpx.AsyncClient, token: str, run_id: str, after: int = 0, timeout: float = 30.0
) -> list[dict[str, Any]]:
    """GraphQL over SSE, distinct-connections mode: `event: next` frames, then `event: complete`."""
    from tests.runs.helpers import sse_messages

    body = {"query": RUN_EVENTS, "variables": {"id": run_id, "after": after}}
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        async with client.stream("POST", "/graphql", json=body, headers=headers) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            async for message in sse_messages(response):
                if message.event == "complete":
                    return events
                assert message.event == "next", message
                result = message.json()
                assert "errors" not in result, result
                events.append(result["data"]["runEvents"])
    raise AssertionError("the stream ended without a complete event")
