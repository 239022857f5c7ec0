from __future__ import annotations

import asyncio
import json

import httpx

from tests.support import UserHandle


async def make_thread(client: httpx.AsyncClient, user: UserHandle) -> str:
    project = (await client.post("/api/projects", json={"name": "runs"}, headers=user.headers)).json()
    thread = (
        await client.post("/api/threads", json={"project_id": project["project_id"]}, headers=user.headers)
    ).json()
    return str(thread["thread_id"])


async def read_sse(
    client: httpx.AsyncClient, run_id: str, user: UserHandle, *, after: int | None = None
) -> list[dict[str, object]]:
    headers = dict(user.headers)
    if after is not None:
        headers["Last-Event-ID"] = str(after)
    frames = []
    async with client.stream("GET", f"/api/agent-run/{run_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                frames.append(json.loads(line[6:]))
    return frames


async def test_start_and_stream_plain_prompt(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    started = await client.post(
        f"/api/thread/{thread_id}/agent/start", json={"prompt": "hello there"}, headers=alice.headers
    )
    assert started.status_code == 200, started.text
    run_id = started.json()["agent_run_id"]
    frames = await asyncio.wait_for(read_sse(client, run_id, alice), 20)
    types = [f["type"] for f in frames]
    assert types[0] == "status" and frames[-1] == {**frames[-1], "type": "status", "status": "completed"}
    assert "content" in types
    assert [f["sequence"] for f in frames] == list(range(1, len(frames) + 1))
