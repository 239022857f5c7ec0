"""The web app's chat: projects, threads, initiate, start, the run stream as useAgentStream consumes it, stop.

Each test makes the calls of one frontend function (named in its docstring) the way that function makes them, and
asserts every field the function reads."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from tests.cheatcode.conftest import bearer, has, stream_like_the_app
from tests.support import UserHandle

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PLAIN_JS = Path(__file__).with_name("js") / "eventsource_plain.mjs"


async def initiate(web: httpx.AsyncClient, user: UserHandle, prompt: str, **form: str) -> dict[str, Any]:
    """lib/api/agents.ts initiateAgent: multipart FormData, only the Authorization header (fetch sets the type)."""
    app_type = form.pop("app_type", "web")
    fields = {"prompt": prompt, "enable_thinking": "false", "reasoning_effort": "low", "stream": "true", **form}
    response = await web.post(
        "/agent/initiate", data=fields, files={"app_type": (None, app_type)}, headers=bearer(user, False)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    has(body, thread_id=str, agent_run_id=str)
    return body


async def wait_finished(web: httpx.AsyncClient, user: UserHandle, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        run: dict[str, Any] = (await web.get(f"/agent-run/{run_id}", headers=bearer(user, False))).json()
        if run["run_status"] in {"completed", "failed", "stopped"}:
            return run
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def test_initiate_with_an_image_then_stream_to_the_end(
    web: httpx.AsyncClient, web_server: Any, user: UserHandle
) -> None:
    """initiateAgent (multipart, with `files`), then useAgentStream.startStreaming: getAgentStatus must say
    `running` (anything else finalizes before connecting), then streamAgent until the app finalizes."""
    response = await web.post(
        "/agent/initiate",
        data={"prompt": "```sh\necho hello from the web app\n```", "model_name": "scripted/demo", "app_type": "web"},
        files=[("files", ("shot.png", PNG, "image/png"))],
        headers=bearer(user, False),
    )
    assert response.status_code == 200, response.text
    started = response.json()
    has(started, thread_id=str, agent_run_id=str)
    status = (await web.get(f"/agent-run/{started['agent_run_id']}", headers=bearer(user, False))).json()
    has(status, id=str, thread_id=str, status=str, error=(str, type(None)))
    assert status["status"] in {"running", "completed"}  # queued reads `running` in the cheatcode dialect

    summary = await stream_like_the_app(web_server.base_url, started["agent_run_id"], user.access_token)
    assert summary["ended"] == "finalized" and summary["finalStatus"] == "completed", summary
    assert summary["opens"] == 1, summary  # one connection: no reconnect storm
    assert summary["errors"] == [], summary
    assert "".join(c["content"] for c in summary["chunks"]).startswith("I will run 1 shell command")
    texts = [json.loads(m["content"]) for m in summary["messages"]]
    assert any(t.get("role") == "assistant" and "I will run" in t["content"] for t in texts), texts
    tool = next(t for t in texts if t.get("role") == "tool")
    assert tool["name"] == "shell" and "hello from the web app" in json.dumps(tool["result"])
    assert summary["toolStarted"] == ["shell"]
    assert all(m["message_id"] for m in summary["messages"])

    # The image reached the sandbox, and the prompt says where (the original's `[Uploaded File: ...]` line).
    run = await wait_finished(web, user, started["agent_run_id"])
    assert "[Uploaded File: /workspace/shot.png]" in run["prompt"]


async def test_initiate_refuses_files_that_are_not_images(web: httpx.AsyncClient, user: UserHandle) -> None:
    """initiateAgent's error path reads `errorDetail.message` (400/422 -> ProjectInitiationError)."""
    response = await web.post(
        "/agent/initiate",
        data={"prompt": "build it"},
        files=[("files", ("run.sh", b"rm -rf /", "application/x-sh"))],
        headers=bearer(user, False),
    )
    assert response.status_code == 422
    has(response.json(), message=str, detail=str)
    projects = (await web.get("/projects", headers=bearer(user))).json()
    assert projects == []  # refused before anything was created


async def test_projects_and_threads_are_bare_arrays_with_the_fields_the_sidebar_reads(
    web: httpx.AsyncClient, user: UserHandle
) -> None:
    """lib/api/projects.ts getProjects and lib/api/threads.ts getThreads (used as arrays by the sidebar,
    hooks/react-query/sidebar/use-sidebar.ts processThreadsWithProjects: project.id, thread.project_id,
    thread.metadata.name, updated_at)."""
    started = await initiate(web, user, "## Build a bakery landing page\nwith a menu")
    projects = (await web.get("/projects", headers=bearer(user))).json()
    assert isinstance(projects, list) and len(projects) == 1
    project = projects[0]
    has(project, id=str, name=str, description=str, account_id=str, created_at=str, sandbox=dict, app_type=str)
    assert project["name"] == "Build a bakery landing page"  # not "## Build ..." nor a code fence
    threads = (await web.get("/threads", headers=bearer(user))).json()
    assert isinstance(threads, list) and threads[0]["thread_id"] == started["thread_id"]
    has(threads[0], thread_id=str, project_id=str, metadata=dict, created_at=str, updated_at=str, is_public=bool)
    assert threads[0]["project_id"] == project["id"] and threads[0]["metadata"]["name"] == project["name"]
    one = await web.get("/threads", params={"project_id": project["id"]}, headers=bearer(user))
    assert [t["thread_id"] for t in one.json()] == [started["thread_id"]]
    # runplane's own clients still get their documented shape by asking for it.
    documented = (await web.get("/projects", params={"dialect": "runplane"}, headers=bearer(user))).json()
    assert documented["projects"][0]["project_id"] == project["id"] and "next_cursor" in documented


async def test_a_mobile_project_keeps_its_app_type(web: httpx.AsyncClient, user: UserHandle) -> None:
    """components/thread/... choose the Expo preview when project.app_type is `mobile` (set by the home page's
    app-type switch, sent with initiate); an unknown type is refused before anything is created."""
    started = await initiate(web, user, "Build a habit tracker app", app_type="mobile")
    projects = (await web.get("/projects", headers=bearer(user))).json()
    mobile = next(p for p in projects if p["id"] == started["project_id"])
    assert mobile["app_type"] == "mobile"
    refused = await web.post(
        "/agent/initiate", data={"prompt": "x"}, files={"app_type": (None, "desktop")}, headers=bearer(user, False)
    )
    assert refused.status_code == 422 and "app_type" in refused.json()["message"], refused.text
    assert len((await web.get("/projects", headers=bearer(user))).json()) == len(projects)


async def test_a_follow_up_posted_then_started_without_a_prompt(
    web: httpx.AsyncClient, web_server: Any, user: UserHandle
) -> None:
    """ThreadActionsContext.sendMessage: the message is stored first (the app used Supabase: here
    POST /thread/{id}/messages), then startAgent with no prompt (body: enable_thinking, reasoning_effort, stream,
    app_type, model_name) answers it; getAgentRuns lists runs with `run_id` and `status`."""
    first = await initiate(web, user, "say hi")
    await wait_finished(web, user, first["agent_run_id"])
    thread_id = first["thread_id"]
    posted = await web.post(
        f"/thread/{thread_id}/messages", json={"content": "```sh\necho follow-up\n```"}, headers=bearer(user)
    )
    assert posted.status_code == 201, posted.text
    has(posted.json(), message_id=str, type=str, content=str)
    body = {
        "enable_thinking": False,
        "reasoning_effort": "low",
        "stream": True,
        "app_type": "web",
        "model_name": "scripted/demo",
    }
    started = await web.post(f"/thread/{thread_id}/agent/start", json=body, headers=bearer(user))
    assert started.status_code == 200, started.text
    has(started.json(), agent_run_id=str)
    summary = await stream_like_the_app(web_server.base_url, started.json()["agent_run_id"], user.access_token)
    assert summary["finalStatus"] == "completed" and summary["opens"] == 1, summary
    tool = next(json.loads(m["content"]) for m in summary["messages"] if m["type"] == "tool")
    assert "follow-up" in json.dumps(tool["result"])

    runs = (await web.get(f"/thread/{thread_id}/agent-runs", headers=bearer(user, False))).json()
    has(runs, agent_runs=list)
    assert [r["run_id"] for r in runs["agent_runs"]] == [started.json()["agent_run_id"], first["agent_run_id"]]
    assert all(isinstance(r["status"], str) for r in runs["agent_runs"])
    messages = (await web.get(f"/thread/{thread_id}/messages", headers=bearer(user))).json()["messages"]
    assert [m["type"] for m in messages][:3] == ["user", "assistant", "user"]
    assert json.loads(messages[2]["content"]) == {"role": "user", "content": "```sh\necho follow-up\n```"}


async def test_a_stopped_run_ends_the_apps_stream(web: httpx.AsyncClient, web_server: Any, user: UserHandle) -> None:
    """stopAgent (POST /agent-run/{id}/stop, JSON content type, no body) while streamAgent listens: the app
    finalizes on the first connection instead of reconnecting forever."""
    started = await initiate(web, user, "```sh\nsleep 20\n```")
    streaming = asyncio.create_task(
        stream_like_the_app(web_server.base_url, started["agent_run_id"], user.access_token)
    )
    await asyncio.sleep(1.5)
    stop = await web.post(f"/agent-run/{started['agent_run_id']}/stop", headers=bearer(user))
    assert stop.status_code == 200
    summary = await streaming
    assert summary["ended"] == "finalized" and summary["opens"] == 1, summary
    assert (await wait_finished(web, user, started["agent_run_id"]))["run_status"] == "stopped"


async def test_a_failed_run_shows_its_error_and_ends(web: httpx.AsyncClient, web_server: Any, user: UserHandle) -> None:
    """A failed run: streamAgent shows `{"status": "error", "message"}` (onError) and the stream ends on its
    thread_run_end row, on the first connection."""
    started = await initiate(web, user, "anything", model_name="openai/no-such-provider-here")
    summary = await stream_like_the_app(web_server.base_url, started["agent_run_id"], user.access_token)
    assert summary["ended"] == "finalized" and summary["opens"] == 1, summary
    assert summary["errors"], summary
    assert (await wait_finished(web, user, started["agent_run_id"]))["run_status"] == "failed"


async def test_an_eventsource_that_never_closes_itself_is_stopped_by_the_server(
    web: httpx.AsyncClient, web_server: Any, user: UserHandle
) -> None:
    """Both dialects end for a finished run: the stream closes after the last event, and the EventSource's own
    reconnect (with Last-Event-ID) gets 204, which stops it. Two connections in all, never a storm."""
    started = await initiate(web, user, "say hi")
    await wait_finished(web, user, started["agent_run_id"])
    for dialect in ("cheatcode", "runplane"):
        query = f"token={user.access_token}&dialect={dialect}"
        url = f"{web_server.base_url}/api/agent-run/{started['agent_run_id']}/stream?{query}"
        proc = await asyncio.create_subprocess_exec("node", str(PLAIN_JS), url, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 40)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        assert summary["closedBy"] == "server" and summary["opens"] == 1, (dialect, summary)
        assert summary["frames"] > 0 and int(summary["lastEventId"]) > 0, (dialect, summary)


async def test_the_run_endpoints_the_app_reads(web: httpx.AsyncClient, user: UserHandle) -> None:
    """getAgentStatus (GET /agent-run/{id}: id, thread_id, status, started_at, completed_at, error; the original's
    camelCase too), GET /agent-run/{id}/status, and stopAgent on a finished run (only `response.ok` is read)."""
    started = await initiate(web, user, "say hi")
    run = await wait_finished(web, user, started["agent_run_id"])
    has(run, id=str, thread_id=str, threadId=str, status=str, started_at=str, completed_at=str, startedAt=str)
    assert run["status"] == "completed" and run["error"] is None
    status = (await web.get(f"/agent-run/{run['id']}/status", headers=bearer(user, False))).json()
    has(status, agent_run_id=str, status=str, db_status=str)
    assert (await web.post(f"/agent-run/{run['id']}/stop", headers=bearer(user))).status_code == 200


async def test_public_routes_the_app_calls_without_a_token(web: httpx.AsyncClient) -> None:
    """lib/api/models.ts getAvailableModels, lib/feature-flags.ts (isEnabled, getFlagDetails, getAllFlags) and
    checkApiHealth: no Authorization header at all."""
    models = (await web.get("/models/available", headers={"Content-Type": "application/json"})).json()
    has(models, models=list, default_model_id=str)
    for model in models["models"]:
        has(model, id=str, openrouter_id=str, name=str, provider=str, description=str, max_tokens=int)
    assert models["default_model_id"] in {m["id"] for m in models["models"]}
    flags = (await web.get("/feature-flags")).json()
    assert flags["flags"] == {"custom_agents": True, "mobile_preview": False}
    flag = (await web.get("/feature-flags/mobile_preview")).json()
    has(flag, flag_name=str, enabled=bool, details=dict)
    assert (await web.get("/feature-flags/nope")).status_code == 404
    health = (await web.get("/health")).json()
    has(health, status=str, timestamp=str, instance_id=str)
