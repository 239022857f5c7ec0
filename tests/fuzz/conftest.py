"""A dedicated runplane server for the fuzzers, with a signed-in user and the admin key.

The fuzz tests are synchronous (Hypothesis drives them and schemathesis calls over `requests`), so they
cannot use the session `server`: it runs in the test event loop, which does not turn while a sync test
runs. A `runplane serve` subprocess (tests/sandbox_api/serve.py: sandboxes that work as root, small
sandbox limits, rate limits out of the way) serves on its own, with its own database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.sandbox_api.serve import SandboxServer, sandbox_server
from tests.support import UserHandle, free_port, register_user

ADMIN_API_KEY = "fuzz-admin-key-0123456789"


@dataclass
class FuzzTarget:
    server: SandboxServer
    user: UserHandle
    # Path parameter -> the id of a real object of `user`: random ids only ever reach the 404 branch.
    objects: dict[str, str]

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def user_headers(self) -> dict[str, str]:
        return self.user.headers

    @property
    def admin_headers(self) -> dict[str, str]:
        return {"X-API-Key": ADMIN_API_KEY}


@pytest.fixture(scope="package")
async def fuzz_target(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[FuzzTarget]:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: provider calls fail at once, never leave the host
    # Rate limits stay out of the way (sandbox_server's LIMITS): 429s would hide the handlers from the fuzzer.
    settings = dict(
        ADMIN_API_KEY=ADMIN_API_KEY, MODEL_BASE_URL=nowhere, BYOK_BASE_URL=nowhere, SANDBOX_COMMAND_TIMEOUT="5"
    )
    async with sandbox_server(tmp_path_factory.mktemp("fuzz"), **settings) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            user = await register_user(http)
            objects = await create_objects(http, user)
        yield FuzzTarget(server, user, objects)
        if "Traceback" in server.log():
            print(server.log())  # the server side of a 5xx (pytest -s, or --show-capture with -rA)


async def create_objects(http: httpx.AsyncClient, user: UserHandle) -> dict[str, str]:
    async def post(path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await http.post(path, json=body, headers=user.headers)
        assert response.status_code < 300, response.text
        result: dict[str, Any] = response.json()
        return result

    project = (await post("/api/projects", {"name": "fuzzed"}))["project_id"]
    thread = (await post("/api/threads", {"project_id": project}))["thread_id"]
    run = (await post(f"/api/thread/{thread}/agent/start", {"prompt": "hello"}))[
        "agent_run_id"
    ]  # scripted: done at once
    sandbox = (await post(f"/api/project/{project}/sandbox/ensure-active"))["sandbox_id"]
    session = await ended_session(http, user, sandbox)
    return {
        "project_id": project,
        "thread_id": thread,
        "agent_run_id": run,
        "sandbox_id": sandbox,
        "session_name": session,
    }


async def ended_session(http: httpx.AsyncClient, user: UserHandle, sandbox: str) -> str:
    """A dev-server session that has already exited: its streams (and the dev server's) open, replay and end, so
    a stream's query parameters and Last-Event-ID are read, and no fuzzed request waits on a live stream."""
    start = {"command": "echo fuzz", "blocking": False, "session_name": "fuzz", "dev_server": True}
    started = await http.post(f"/api/sandboxes/{sandbox}/execute", json=start, headers=user.headers)
    assert started.status_code == 200, started.text
    for _ in range(200):
        status = await http.get(f"/api/sandboxes/{sandbox}/sessions/fuzz/status", headers=user.headers)
        if status.json()["status"] != "running":
            return "fuzz"
        await asyncio.sleep(0.05)
    raise AssertionError(f"the fuzz session did not end: {status.text}")
