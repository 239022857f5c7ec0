"""Cheatcode's web app against runplane, unchanged: one `runplane serve` configured as its operator would
(RUNPLANE_REST_DIALECT=cheatcode: the app cannot ask for a dialect itself), and helpers that make the app's calls
exactly as its code does (frontend/src/lib/api/*.ts, hooks/, components/thread/hooks/: cited per test)."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.spawned import reachable_dir, spawn_server
from tests.support import UserHandle, register_user

STREAM_JS = Path(__file__).with_name("js") / "stream_agent.mjs"
FLAGS = json.dumps({"custom_agents": True, "mobile_preview": {"enabled": False, "description": "Expo previews"}})


@pytest.fixture(scope="session")
async def web_server() -> AsyncIterator[Any]:
    data_dir = reachable_dir("runplane-cheatcode-")
    settings = {
        "REST_DIALECT": "cheatcode",
        "FEATURE_FLAGS_ENABLED": "true",
        "FEATURE_FLAGS": FLAGS,
        "RUN_QUEUE": "inprocess",
        "RATE_LIMIT_PER_MINUTE": "100000",
        "RUN_STARTS_PER_MINUTE": "100000",
        "MAX_STREAMS_PER_USER": "1000",
        "SCRIPTED_CHUNK_DELAY": "0.01",
        # Node (npm run dev) reserves far more address space than it uses: under the default 1 GiB RLIMIT_AS it
        # aborts at start-up (exit 134). An operator running Node dev servers raises this (README).
        "SANDBOX_MEMORY_BYTES": str(16 * 1024**3),
    }
    async with spawn_server(data_dir, settings, name="cheatcode-web") as server:
        yield server
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
async def web(web_server: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The web app's API_URL is `${NEXT_PUBLIC_BACKEND_URL}` = the server's /api."""
    async with httpx.AsyncClient(base_url=web_server.base_url + "/api", timeout=30) as client:
        yield client


@pytest.fixture
async def user(web_server: Any) -> UserHandle:
    async with httpx.AsyncClient(base_url=web_server.base_url) as root:
        return await register_user(root)


def bearer(user: UserHandle, json_body: bool = True) -> dict[str, str]:
    """The app's headers: `Authorization: Bearer <clerk token>`, and `Content-Type: application/json` where its
    fetch sets one (even on GETs, as getProjects and getThreads do)."""
    headers = {"Authorization": f"Bearer {user.access_token}"}
    return {**headers, "Content-Type": "application/json"} if json_body else headers


async def stream_like_the_app(base_url: str, run_id: str, token: str, timeout_ms: int = 30000) -> dict[str, Any]:
    """lib/api/agents.ts streamAgent + hooks/useAgentStream.ts, under node with a real EventSource."""
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(STREAM_JS),
        base_url + "/api",
        run_id,
        token,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={"STREAM_TIMEOUT_MS": str(timeout_ms), "PATH": "/usr/local/bin:/usr/bin:/bin", "NODE_PATH": ""},
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout_ms / 1000 + 10)
    assert proc.returncode == 0, err.decode()
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


def has(value: dict[str, Any], **types: type | tuple[type, ...]) -> None:
    """Every field the app reads is there, with the type it reads it as."""
    for name, kind in types.items():
        assert name in value, (name, value)
        assert isinstance(value[name], kind), (name, value[name], kind)
