"""Client-side helpers of the sandbox API tests: a project's sandbox, commands, SSE frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from tests.support import UserHandle


async def new_sandbox(client: httpx.AsyncClient, user: UserHandle, name: str = "sbx") -> tuple[str, str]:
    """(project_id, sandbox_id) of a new project's freshly ensured sandbox."""
    project = await client.post("/api/projects", json={"name": name}, headers=user.headers)
    assert project.status_code == 201, project.text
    project_id = project.json()["project_id"]
    ensured = await client.post(f"/api/project/{project_id}/sandbox/ensure-active", headers=user.headers)
    assert ensured.status_code == 200, ensured.text
    return project_id, ensured.json()["sandbox_id"]


async def execute(
    client: httpx.AsyncClient, user: UserHandle, sandbox_id: str, command: str, *, expect: int = 200, **body: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/sandboxes/{sandbox_id}/execute", json={"command": command, **body}, headers=user.headers
    )
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


async def sse_frames(
    client: httpx.AsyncClient,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    until: str = "exit",
    timeout: float = 30.0,
    params: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """`data:` frames of an SSE stream (each with its `id:` as `_id`) until one of type `until`."""
    frames: list[dict[str, Any]] = []
    event_id: str | None = None
    async with asyncio.timeout(timeout):
        async with client.stream("GET", url, headers=headers, params=params) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    frames.append({**json.loads(line[6:]), "_id": event_id})
                    event_id = None
                    if frames[-1]["type"] == until:
                        return frames
    raise AssertionError(f"stream ended without a {until} frame: {frames}")


def output_of(frames: list[dict[str, Any]]) -> str:
    return "".join(f["content"] for f in frames if f["type"] == "output")


async def wait_session(
    client: httpx.AsyncClient, user: UserHandle, sandbox_id: str, name: str, *, timeout: float = 20.0
) -> dict[str, Any]:
    """Poll the session's status until it is no longer running."""
    async with asyncio.timeout(timeout):
        while True:
            status = await client.get(f"/api/sandboxes/{sandbox_id}/sessions/{name}/status", headers=user.headers)
            assert status.status_code == 200, status.text
            if status.json()["status"] != "running":
                return dict(status.json())
            await asyncio.sleep(0.1)
