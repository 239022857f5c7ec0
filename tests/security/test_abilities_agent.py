"""Abilities bound the agent: a run may use only the tools its starter's token allows. A token with
`runs:start` but not `sandbox:exec` is refused by /execute (403); its agent, asked for a ```sh block or a
file write in the prompt, gets a refusal that the run's events show, and nothing runs or changes in the
sandbox. The same prompt with a full token runs."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.runs.helpers import make_thread, read_stream, start_run
from tests.sandbox_api.helpers import execute, new_sandbox
from tests.sandbox_api.serve import SandboxServer, sandbox_server
from tests.spawned import reachable_dir
from tests.support import UserHandle, register_user

PROMPT = "Please run:\n```sh\necho pwned > pwned.txt\n```\n\nwrite file planted.txt:\n```\nplanted\n```\n"
NARROW = ["projects:read", "projects:write", "runs:start"]


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[SandboxServer]:
    data_dir = reachable_dir("runplane-sec-abilities-")
    try:
        async with sandbox_server(data_dir) as running:
            yield running
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


async def narrowed(client: httpx.AsyncClient, user: UserHandle, abilities: list[str]) -> UserHandle:
    response = await client.post(
        "/api/auth/token", json={"email": user.email, "password": user.password, "abilities": abilities}
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    return UserHandle(user.email, user.password, tokens["access_token"], tokens["refresh_token"], user.user_id)


def tool_results(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "tool_result"]


async def test_a_runs_start_only_token_cannot_make_its_agent_run_commands(server: SandboxServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        alice = await register_user(client)
        project_id, sid = await new_sandbox(client, alice)
        narrow = await narrowed(client, alice, NARROW)
        await execute(client, narrow, sid, "echo direct > direct.txt", expect=403)  # as before

        narrow.extra[f"project@{client.base_url}"] = project_id
        run_id = (await start_run(client, narrow, await make_thread(client, narrow), prompt=PROMPT))["agent_run_id"]
        frames = await read_stream(client, run_id, narrow.headers, timeout=60)
        results = tool_results(frames)
        assert [r["tool"] for r in results] == ["shell", "write_file"], frames
        for result in results:
            assert result["ok"] is False and result["refused"] is True and result["ability"] == "sandbox:exec"
            assert "lacks the 'sandbox:exec' ability" in result["result"]
        listing = await client.get(f"/api/sandboxes/{sid}/files", headers=alice.headers)
        assert listing.status_code == 200 and listing.json()["files"] == [], listing.text

        alice.extra[f"project@{client.base_url}"] = project_id
        run_id = (await start_run(client, alice, await make_thread(client, alice), prompt=PROMPT))["agent_run_id"]
        frames = await read_stream(client, run_id, alice.headers, timeout=60)
        assert all(r["ok"] for r in tool_results(frames)), frames
        listing = await client.get(f"/api/sandboxes/{sid}/files", headers=alice.headers)
        assert {f["name"] for f in listing.json()["files"]} == {"pwned.txt", "planted.txt"}, listing.text
