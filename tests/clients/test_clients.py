"""The GraphQL clients frontends use, against a live `runplane serve` set up as a browser app's backend
(RUNPLANE_CORS_ORIGINS): Apollo Client 3 and urql with their defaults apart from URL and token (no Accept
overrides), and graphql-sse. Each script in clients/ prints one JSON line per step; this side checks them."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.helpers import CLIENTS, REPO, node_or_skip
from tests.runs.helpers import make_thread, start_run, wait_for_status
from tests.spawned import Process, spawn_server
from tests.support import UserHandle, register_user

APP_ORIGIN = "http://localhost:5173"
REQUESTS_PER_MINUTE = 150  # the 429 step spends what the other steps leave
THREAD_TITLES = [f"t{n}" for n in range(1, 6)]  # five threads: pages of 2, 2 and 1


@pytest.fixture(scope="module")
async def backend(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Process]:
    settings = {"cors_origins": APP_ORIGIN, "rate_limit_per_minute": REQUESTS_PER_MINUTE, "max_streams_per_user": 50}
    async with spawn_server(tmp_path_factory.mktemp("clients"), settings, name="clients") as proc:
        yield proc


@dataclass
class Setup:
    user: UserHandle
    project_id: str
    run_id: str
    sequences: list[int]


async def gql(http: httpx.AsyncClient, user: UserHandle, query: str, **variables: Any) -> dict[str, Any]:
    answer = await http.post("/graphql", json={"query": query, "variables": variables}, headers=user.headers)
    data: dict[str, Any] = answer.json()["data"]
    return data


async def prepare(http: httpx.AsyncClient) -> Setup:
    """A user with a project of five threads and a finished run (a client's own requests come after these)."""
    user = await register_user(http)
    created = await gql(
        http,
        user,
        "mutation($i: CreateProjectInput!) { createProject(input: $i) { ... on ProjectPayload { project { id } } } }",
        i={"name": "clients"},
    )
    project_id = created["createProject"]["project"]["id"]
    for title in THREAD_TITLES:
        await gql(
            http,
            user,
            "mutation($i: CreateThreadInput!) { createThread(input: $i) { __typename } }",
            i={"projectId": project_id, "title": title},
        )
    run_id = str((await start_run(http, user, await make_thread(http, user)))["agent_run_id"])
    await wait_for_status(http, user, run_id, "completed", timeout=60)
    events = await gql(http, user, "query($id: ID!) { events(runId: $id) { sequence } }", id=run_id)
    return Setup(user, project_id, run_id, [e["sequence"] for e in events["events"]])


async def run_client(script: str, backend: Process, setup: Setup) -> dict[str, dict[str, Any]]:
    """Runs clients/<script> and returns its steps by name; a failed step fails with the client's own error."""
    node = node_or_skip()
    config = {
        "http": backend.base_url + "/graphql",
        "ws": backend.ws_url,
        "token": setup.user.access_token,
        "origin": APP_ORIGIN,
        "projectId": setup.project_id,
        "runId": setup.run_id,
        "suffix": uuid.uuid4().hex[:8],
    }
    proc = await asyncio.create_subprocess_exec(
        node,
        str(CLIENTS / script),
        json.dumps(config),
        cwd=str(REPO),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    lines = [json.loads(line) for line in stdout.decode().splitlines() if line.strip()]
    assert lines and lines[-1] == {"done": True}, (stdout.decode()[-3000:], stderr.decode()[-3000:])
    steps = {line["step"]: line for line in lines if "step" in line}
    failed = {name: step["error"] for name, step in steps.items() if "error" in step}
    assert not failed, json.dumps(failed, indent=1)
    return steps


@pytest.fixture(scope="module")
async def setups(backend: Process) -> AsyncIterator[dict[str, Setup]]:
    async with httpx.AsyncClient(base_url=backend.base_url, timeout=30) as http:
        yield {name: await prepare(http) for name in ("apollo", "urql", "graphql-sse")}


def check_common(steps: dict[str, dict[str, Any]], setup: Setup) -> None:
    assert steps["query"]["email"] == setup.user.email
    assert steps["pages"]["pages"] == [2, 2, 1]
    assert steps["pages"]["merged"] == list(reversed(THREAD_TITLES))  # newest first, each once
    assert steps["mutation"]["typename"] == "NotFoundError" and steps["mutation"]["code"] == "NOT_FOUND"
    assert steps["websocket"]["sequences"] == setup.sequences  # the whole run, from a browser origin
    assert steps["429"]["statusCode"] == 429
    assert steps["429"]["errors"][0]["extensions"]["code"] == "RATE_LIMITED", steps["429"]
    assert int(steps["429"]["last"]["retryAfter"]) >= 1


def check_apq(step: dict[str, Any], email: str) -> None:
    """Hash alone (PersistedQueryNotFound), hash and document, then the hash alone runs."""
    assert step["emails"] == [email, email]
    first, retry, second = step["wire"]
    assert "query" not in first["body"] and "persistedQuery" in first["body"]["extensions"]
    assert "query" in retry["body"] and "persistedQuery" in retry["body"]["extensions"]
    assert "query" not in second["body"] and second["status"] == 200


async def test_apollo_client(backend: Process, setups: dict[str, Setup]) -> None:
    setup = setups["apollo"]
    steps = await run_client("apollo.mjs", backend, setup)
    check_common(steps, setup)
    (query,) = steps["query"]["wire"]
    assert query["accept"] == "*/*" and query["contentType"].startswith("application/json")  # Apollo 3's default
    assert steps["multipart"]["sequences"] == setup.sequences
    (multipart,) = steps["multipart"]["wire"]
    assert multipart["contentType"].startswith("multipart/mixed") and "subscriptionSpec" in multipart["accept"]
    check_apq(steps["apq"], setup.user.email)
    check_apq(steps["apq_get"], setup.user.email)
    assert [sent["method"] for sent in steps["apq_get"]["wire"]] == ["GET", "POST", "GET"]


async def test_urql(backend: Process, setups: dict[str, Setup]) -> None:
    setup = setups["urql"]
    steps = await run_client("urql.mjs", backend, setup)
    check_common(steps, setup)
    for name in ("query", "mutation"):  # urql lists text/event-stream after the JSON types: JSON comes back
        (sent,) = steps[name]["wire"]
        assert "text/event-stream" in sent["accept"] and sent["contentType"].startswith(
            "application/graphql-response+json"
        )
    assert steps["sse"]["sequences"] == setup.sequences  # urql reads the LF-framed SSE
    (sse,) = steps["sse"]["wire"]
    assert sse["contentType"].startswith("text/event-stream")
    check_apq(steps["apq"], setup.user.email)
    assert [sent["method"] for sent in steps["apq"]["wire"]] == ["GET"] * 3  # cacheable: the retry too, in the URL


async def test_graphql_sse(backend: Process, setups: dict[str, Setup]) -> None:
    setup = setups["graphql-sse"]
    steps = await run_client("graphql-sse.mjs", backend, setup)
    assert steps["query"]["email"] == setup.user.email
    assert steps["subscription"]["sequences"] == setup.sequences
    for name in ("query", "subscription"):
        (sent,) = steps[name]["wire"]
        assert sent["accept"] == "text/event-stream" and sent["contentType"].startswith("text/event-stream")


@pytest.mark.skipif(
    not Path(os.environ.get("CHROMIUM", "/usr/bin/chromium")).exists(), reason="needs Chromium; CI installs it"
)
async def test_a_browser_page_on_the_allowed_origin(backend: Process) -> None:
    """Chromium's own rules: the app's origin passes CORS (a preflighted POST), opens the WebSocket and reads
    Retry-After and X-Request-Id from a 429; a page of another origin can do none of it."""
    node = node_or_skip()
    async with httpx.AsyncClient(base_url=backend.base_url, timeout=30) as http:
        user = await register_user(http)
    config = {
        "http": backend.base_url + "/graphql",
        "ws": backend.ws_url,
        "token": user.access_token,
        "origin": APP_ORIGIN,
        "otherOrigin": "http://localhost:5174",
    }
    proc = await asyncio.create_subprocess_exec(
        node, str(CLIENTS / "browser.mjs"), json.dumps(config), cwd=str(REPO), stdout=asyncio.subprocess.PIPE
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), 120)
    seen = json.loads(stdout)
    assert "error" not in seen, seen
    allowed, other = seen["allowed"], seen["other"]
    assert "body" in allowed["query"], seen
    assert allowed["query"]["body"]["data"]["me"]["email"] == user.email, allowed
    assert allowed["socket"] == {"email": user.email}, allowed
    assert int(allowed["limited"]["retryAfter"]) >= 1 and allowed["limited"]["requestId"], allowed
    assert allowed["limited"]["body"]["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert "Failed to fetch" in other["query"]["error"], other  # CORS: the script never sees the answer
    assert other["socket"] == {"closed": 1006}, other  # the handshake was refused (403)
