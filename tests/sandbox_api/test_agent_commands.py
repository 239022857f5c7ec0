"""An agent run works in its project's sandbox: a shell block in the prompt (scripted provider) runs
there, and the command is listed per run."""

from __future__ import annotations

import asyncio

import httpx

from tests.support import UserHandle

PROMPT = """Please set things up:

```sh
echo "built by the agent" > agent.txt && cat agent.txt
```
"""


async def test_agent_shell_block_runs_in_the_project_sandbox(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    project = (await client.post("/api/projects", json={"name": "agent"}, headers=alice.headers)).json()
    thread = (
        await client.post("/api/threads", json={"project_id": project["project_id"]}, headers=alice.headers)
    ).json()
    started = await client.post(
        f"/api/thread/{thread['thread_id']}/agent/start",
        json={"prompt": PROMPT, "model": "scripted/demo"},
        headers=alice.headers,
    )
    assert started.status_code == 200, started.text
    run_id = started.json()["agent_run_id"]
    async with asyncio.timeout(30):
        while (run := (await client.get(f"/api/agent-run/{run_id}", headers=alice.headers)).json())["status"] in (
            "queued",
            "running",
        ):
            await asyncio.sleep(0.1)
    assert run["status"] == "completed", run

    commands = await client.get(f"/api/agent-run/{run_id}/commands", headers=alice.headers)
    assert commands.status_code == 200
    [command] = commands.json()["commands"]
    assert command["command"] == 'echo "built by the agent" > agent.txt && cat agent.txt'
    assert (
        command["exit_code"] == 0
        and not command["timed_out"]
        and command["output_bytes"] == len("built by the agent\n")
    )

    # The file is in the project's sandbox, the one ensure-active answers.
    ensured = (
        await client.post(f"/api/project/{project['project_id']}/sandbox/ensure-active", headers=alice.headers)
    ).json()
    content = await client.get(
        f"/api/sandboxes/{ensured['sandbox_id']}/files/content", params={"path": "agent.txt"}, headers=alice.headers
    )
    assert content.text == "built by the agent\n"
    # The tool result the model saw is in the run's events.
    events = (await client.get(f"/api/agent-run/{run_id}/events", headers=alice.headers)).json()["events"]
    assert any(e["type"] == "tool_result" and "built by the agent" in str(e.get("result", "")) for e in events), events

    assert (await client.get(f"/api/agent-run/{run_id}/commands", headers=bob.headers)).status_code == 404
