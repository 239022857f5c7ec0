"""Sandbox lifecycle: ensure-active (idempotent under concurrency), delete, idle stop and wake,
another user's sandbox 404 everywhere, abilities."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runplane.rest_compat.registry import api
from tests.sandbox_api.helpers import execute, new_sandbox, wait_session
from tests.sandbox_api.serve import SandboxServer, sandbox_server
from tests.support import UserHandle, register_user


async def test_ensure_active_answers_the_sandbox(client: httpx.AsyncClient, alice: UserHandle) -> None:
    project = (await client.post("/api/projects", json={"name": "p"}, headers=alice.headers)).json()
    response = await client.post(f"/api/project/{project['project_id']}/sandbox/ensure-active", headers=alice.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["project_id"] == project["project_id"] and body["status"] == "active"
    assert uuid.UUID(body["sandbox_id"]) and body["workspace"] == "/workspace" and isinstance(body["isolated"], bool)
    again = await client.post(f"/api/project/{project['project_id']}/sandbox/ensure-active", headers=alice.headers)
    assert again.json()["sandbox_id"] == body["sandbox_id"]
    got = await client.get(f"/api/sandboxes/{body['sandbox_id']}", headers=alice.headers)
    assert got.status_code == 200 and got.json()["project_id"] == project["project_id"]


def _db_id(sbx: SandboxServer, value: str) -> object:
    """SQLite keeps UUIDs as text, PostgreSQL as uuid."""
    return value if sbx.database_url.startswith("sqlite") else uuid.UUID(value)


async def test_concurrent_ensure_active_makes_one_sandbox(
    client: httpx.AsyncClient, alice: UserHandle, sbx: SandboxServer
) -> None:
    project = (await client.post("/api/projects", json={"name": "race"}, headers=alice.headers)).json()
    url = f"/api/project/{project['project_id']}/sandbox/ensure-active"
    answers = await asyncio.gather(*(client.post(url, headers=alice.headers) for _ in range(12)))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    assert len({a.json()["sandbox_id"] for a in answers}) == 1
    rows = await sbx.query("SELECT count(*) FROM sandboxes WHERE project_id = $1", _db_id(sbx, project["project_id"]))
    assert rows == [(1,)]
    ran = await execute(client, alice, answers[0].json()["sandbox_id"], "echo ok")
    assert ran["output"] == "ok\n"


async def test_delete_removes_the_sandbox_and_its_files(
    client: httpx.AsyncClient, alice: UserHandle, sbx: SandboxServer
) -> None:
    sandbox_dir = sbx.sandbox_dir
    project_id, sid = await new_sandbox(client, alice)
    await execute(client, alice, sid, "echo data > kept.txt")
    await execute(client, alice, sid, "sleep 60", blocking=False, session_name="bg")
    assert (sandbox_dir / sid / "workspace" / "kept.txt").exists()
    deleted = await client.delete(f"/api/sandboxes/{sid}", headers=alice.headers)
    assert deleted.status_code == 200 and deleted.json() == {"deleted": True, "sandbox_id": sid}
    assert not (sandbox_dir / sid).exists()
    assert (await client.get(f"/api/sandboxes/{sid}", headers=alice.headers)).status_code == 404
    assert (await client.delete(f"/api/sandboxes/{sid}", headers=alice.headers)).status_code == 404
    fresh = await client.post(f"/api/project/{project_id}/sandbox/ensure-active", headers=alice.headers)
    assert fresh.json()["sandbox_id"] != sid
    listing = await client.get(f"/api/sandboxes/{fresh.json()['sandbox_id']}/files", headers=alice.headers)
    assert listing.json()["files"] == []


def _concrete(path: str, sid: str, project_id: str) -> str:
    return (
        path.replace("{sandbox_id}", sid)
        .replace("{project_id}", project_id)
        .replace("{session_name}", "s1")
        .replace("{snapshot_id}", "snap-x")
    )


async def test_another_users_sandbox_is_404_everywhere(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    project_id, sid = await new_sandbox(client, alice)
    # The file is written before the dev server starts, so Bob's attempts race with nothing.
    await execute(client, alice, sid, "echo secret > s.txt")
    await execute(
        client, alice, sid, "python3 -m http.server $PORT", blocking=False, session_name="s1", dev_server=True
    )
    routes = [r for r in api.routes if "{sandbox_id}" in r.path or r.path.startswith("/project/{project_id}/sandbox")]
    assert len(routes) >= 20
    for route in routes:
        url = "/api" + _concrete(route.path, sid, project_id)
        # A body every route accepts, so each reaches its lookup (files/json would overwrite s.txt).
        body = {"command": "cat s.txt", "paths": ["s.txt"], "description": "x", "path": "s.txt", "content": "bob's"}
        response = await client.request(route.method, url, json=body, headers=bob.headers, params={"path": "s.txt"})
        assert response.status_code == 404, (route.method, route.path, response.status_code, response.text)
        assert "secret" not in response.text
    # Alice's things are all still there.
    content = await client.get(f"/api/sandboxes/{sid}/files/content", params={"path": "s.txt"}, headers=alice.headers)
    assert content.text == "secret\n"
    assert (await client.get(f"/api/sandboxes/{sid}/sessions/s1/status", headers=alice.headers)).json()[
        "status"
    ] == "running"
    await client.post(f"/api/sandboxes/{sid}/sessions/s1/stop", headers=alice.headers)


async def test_reading_needs_projects_read_and_running_needs_sandbox_exec(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    project_id, sid = await new_sandbox(client, alice)
    login = await client.post(
        "/api/auth/token", json={"email": alice.email, "password": alice.password, "abilities": ["projects:read"]}
    )
    reader = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get(f"/api/sandboxes/{sid}/files", headers=reader)).status_code == 200
    for method, url in [
        ("POST", f"/api/sandboxes/{sid}/execute"),
        ("POST", f"/api/project/{project_id}/sandbox/ensure-active"),
        ("DELETE", f"/api/sandboxes/{sid}"),
        ("POST", f"/api/sandboxes/{sid}/snapshots"),
    ]:
        response = await client.request(method, url, json={"command": "true"}, headers=reader)
        assert response.status_code == 403, (method, url, response.text)
    login = await client.post(
        "/api/auth/token", json={"email": alice.email, "password": alice.password, "abilities": ["sandbox:exec"]}
    )
    runner = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get(f"/api/sandboxes/{sid}/files", headers=runner)).status_code == 403
    assert (
        await client.post(f"/api/sandboxes/{sid}/execute", json={"command": "true"}, headers=runner)
    ).status_code == 200


@pytest.fixture
async def idle_server(tmp_path: Path) -> AsyncIterator[str]:
    """A server whose sandboxes stop after 1.5 s without activity; yields its base URL."""
    async with sandbox_server(tmp_path, SANDBOX_IDLE_TIMEOUT="1.5", SANDBOX_REAPER_INTERVAL="0.2") as server:
        yield server.base_url


async def _until_status(http: httpx.AsyncClient, user: UserHandle, sid: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while (row := (await http.get(f"/api/sandboxes/{sid}", headers=user.headers)).json())["status"] != status:
            await asyncio.sleep(0.2)
    return dict(row)


async def test_idle_sandbox_stops_and_ensure_active_wakes_it(idle_server: str) -> None:
    async with httpx.AsyncClient(base_url=idle_server, timeout=30) as http:
        user = await register_user(http)
        project_id, sid = await new_sandbox(http, user)
        started = await execute(
            http, user, sid, "echo hi > f.txt; sleep 300", blocking=False, session_name="dev", dev_server=True
        )
        assert isinstance(started["port"], int)
        row = await _until_status(http, user, sid, "stopped")
        assert row["stopped_at"] is not None
        status = await wait_session(http, user, sid, "dev")  # its sessions were stopped with it
        assert status["status"] == "killed"
        woken = await http.post(f"/api/project/{project_id}/sandbox/ensure-active", headers=user.headers)
        assert (
            woken.json()["status"] == "active"
            and woken.json()["sandbox_id"] == sid
            and woken.json()["stopped_at"] is None
        )
        content = await http.get(f"/api/sandboxes/{sid}/files/content", params={"path": "f.txt"}, headers=user.headers)
        assert content.text == "hi\n"  # files outlive a stop
        # Running a command wakes it as well, and a new dev server gets a port again.
        await _until_status(http, user, sid, "stopped")
        again = await execute(
            http, user, sid, "cat f.txt; sleep 300", blocking=False, session_name="dev", dev_server=True
        )
        assert isinstance(again["port"], int)
        assert (await http.get(f"/api/sandboxes/{sid}", headers=user.headers)).json()["status"] == "active"
