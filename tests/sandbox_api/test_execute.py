"""Commands through the execute route: blocking results, the time limit, the output cap, a fork bomb,
and non-blocking sessions read by status, polling and SSE."""

from __future__ import annotations

import asyncio
import os
import time

import httpx

from tests.sandbox_api.helpers import execute, new_sandbox, output_of, sse_frames, wait_session
from tests.sandbox_api.serve import MAX_OUTPUT, SandboxServer
from tests.sandboxes.conftest import processes_of_uid
from tests.support import UserHandle


async def test_blocking_command_returns_output_and_exit_code(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    ran = await execute(client, alice, sid, "echo out; echo err >&2; mkdir -p sub; exit 3")
    assert ran["exit_code"] == 3 and ran["output"] == "out\nerr\n"
    assert not ran["timed_out"] and not ran["truncated"]
    in_sub = await execute(
        client, alice, sid, "pwd; echo $HOME; env | grep -c SECRET || true", cwd="sub", env={"GREETING": "hi"}
    )
    assert in_sub["output"].splitlines()[0].endswith("/workspace/sub")
    assert "RUNPLANE" not in (await execute(client, alice, sid, "env"))["output"]  # nothing inherited from the server
    bad = await client.post(f"/api/sandboxes/{sid}/execute", json={"command": ""}, headers=alice.headers)
    assert bad.status_code == 422
    bad = await client.post(
        f"/api/sandboxes/{sid}/execute", json={"command": "true", "timeout": -1}, headers=alice.headers
    )
    assert bad.status_code == 422


async def test_command_is_killed_at_its_time_limit(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    started = time.monotonic()
    ran = await execute(client, alice, sid, "echo started; sleep 30; echo never", timeout=1)
    assert time.monotonic() - started < 8
    assert ran["timed_out"] and ran["exit_code"] == 137 and ran["output"] == "started\n"
    # The ceiling applies to whatever timeout is asked for (conftest: 20 s).
    started = time.monotonic()
    ran = await execute(client, alice, sid, "sleep 60 & wait", timeout=10_000)
    assert ran["timed_out"] and 15 < time.monotonic() - started < 30


async def test_output_flood_is_cut_at_its_cap(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    started = time.monotonic()
    ran = await execute(client, alice, sid, "yes flood")
    assert time.monotonic() - started < 10
    assert ran["truncated"] and not ran["timed_out"]
    assert len(ran["output"].encode()) <= MAX_OUTPUT and ran["output"].startswith("flood\nflood\n")


async def test_fork_bomb_is_contained(client: httpx.AsyncClient, sbx: SandboxServer, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    started = time.monotonic()
    # The shell lingers while the bomb runs into the process limit (conftest: 64), then the whole
    # group (the pid namespace, under bubblewrap) is killed.
    ran = await execute(client, alice, sid, ":(){ :|:& };: ; sleep 3; echo survived", timeout=6)
    assert time.monotonic() - started < 15
    assert "survived" in ran["output"] or ran["timed_out"] or ran["truncated"]
    # The server answers, the sandbox still runs commands, and nothing of the bomb is left.
    assert (await client.get("/api/health")).status_code == 200
    after = await execute(client, alice, sid, "echo alive")
    assert after["output"] == "alive\n"
    if os.geteuid() == 0:
        uid = sbx.sandbox_uid(sid)
        assert uid is not None
        for _ in range(60):
            if not processes_of_uid(uid):
                break
            await asyncio.sleep(0.1)
        assert processes_of_uid(uid) == []


async def test_session_status_polling_and_sse_stream(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    started = await execute(
        client,
        alice,
        sid,
        "for i in 1 2 3; do echo line$i; sleep 0.3; done; exit 4",
        blocking=False,
        session_name="counter",
    )
    # Every session has a port of its own (in PORT), so a dev server started without dev_server is previewable.
    assert started["session_name"] == "counter" and started["status"] == "running" and started["port"] > 0

    frames = await sse_frames(client, f"/api/sandboxes/{sid}/sessions/counter/stream", headers=alice.headers)
    assert output_of(frames) == "line1\nline2\nline3\n"
    end = frames[-1]
    assert end["type"] == "exit" and end["status"] == "exited" and end["exit_code"] == 4
    assert frames[-2]["_id"] == str(len("line1\nline2\nline3\n"))  # id: = output offset, for Last-Event-ID

    status = await wait_session(client, alice, sid, "counter")
    assert status["exit_code"] == 4 and status["output"] == "line1\nline2\nline3\n"
    polled = (
        await client.get(f"/api/sandboxes/{sid}/sessions/counter/output", params={"after": 6}, headers=alice.headers)
    ).json()
    assert polled["output"] == "line2\nline3\n" and polled["offset"] == 6 and polled["status"] == "exited"

    # Resuming after an offset (Last-Event-ID) replays only what came after it; ?token= works for EventSource.
    resumed = await sse_frames(
        client,
        f"/api/sandboxes/{sid}/sessions/counter/stream",
        headers={"Last-Event-ID": "12"},
        params={"token": alice.access_token},
    )
    assert output_of(resumed) == "line3\n"
    listed = (await client.get(f"/api/sandboxes/{sid}/sessions", headers=alice.headers)).json()["sessions"]
    assert [s["session_name"] for s in listed] == ["counter"]
    missing = await client.get(f"/api/sandboxes/{sid}/sessions/nope/status", headers=alice.headers)
    assert missing.status_code == 404


async def test_sessions_can_be_stopped_and_names_are_unique_while_running(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    _, sid = await new_sandbox(client, alice)
    await execute(client, alice, sid, "sleep 60", blocking=False, session_name="sleeper")
    await execute(client, alice, sid, "sleep 60", blocking=False, session_name="sleeper", expect=409)
    stopped = await client.post(f"/api/sandboxes/{sid}/sessions/sleeper/stop", headers=alice.headers)
    assert stopped.status_code == 200 and stopped.json()["status"] == "killed"
    again = await execute(client, alice, sid, "echo again", blocking=False, session_name="sleeper")
    assert again["status"] in ("running", "exited")
    # Ports are handed out, never chosen: a chosen one could point the preview proxy anywhere.
    chosen = await client.post(
        f"/api/sandboxes/{sid}/execute",
        json={"command": "true", "blocking": False, "port": 5432},
        headers=alice.headers,
    )
    assert chosen.status_code == 422


async def test_session_timeout_kills_it(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    await execute(client, alice, sid, "sleep 30", blocking=False, session_name="short", timeout=1)
    status = await wait_session(client, alice, sid, "short", timeout=10)
    assert status["status"] == "killed"


async def test_sandbox_rows_match_projects(alice: UserHandle, client: httpx.AsyncClient, sbx: SandboxServer) -> None:
    project_id, sid = await new_sandbox(client, alice)
    rows = await sbx.query("SELECT project_id, owner_id, status FROM sandboxes WHERE id = $1", _db_id(sbx, sid))
    assert [(str(p), str(o), s) for p, o, s in rows] == [(project_id, alice.user_id, "active")]


def _db_id(sbx: SandboxServer, value: str) -> object:
    """SQLite keeps UUIDs as text, PostgreSQL as uuid."""
    import uuid

    return value if sbx.database_url.startswith("sqlite") else uuid.UUID(value)
