"""Allow-list mode (RUNPLANE_GRAPHQL_ALLOWLIST_ONLY) on a real `runplane serve`: `runplane register-operations`
registers a frontend's operations (an Apollo persisted-query manifest and .graphql files), validated against the
schema; then only those run, by hash or as full text in any spelling, over HTTP and WebSocket; anything else is a
403 PERSISTED_QUERY_NOT_IN_LIST, and APQ registers nothing. Operations registered later run without a restart."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import parse, print_ast

from runplane.operations_file import OperationsFile, write_operations
from tests.spawned import Process, base_env, runplane_command, spawn_server
from tests.streams.helpers import graphql_socket, next_message
from tests.support import UserHandle, register_user

ME_FILE = """
# the frontend's query, as written in its source
query Me { me { ...Who } }
fragment Who on User { id email }
"""
ME_SENT = "fragment Who on User { id, email }\nquery Me { me { ...Who } }"  # the same operation, respelled
PROJECTS = "query Projects { projects(first: 2) { nodes { id } } }"
LOGIN = "mutation Login($input: LoginInput!) { login(input: $input) { __typename } }"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def register(operations_file: Path, *paths: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = base_env(data_dir, graphql_operations_file=operations_file)
    return subprocess.run(
        runplane_command("register-operations", *map(str, paths)), env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
async def frontend(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files a frontend ships: a .graphql file and Apollo's persisted-query manifest."""
    root = tmp_path_factory.mktemp("frontend")
    (root / "me.graphql").write_text(ME_FILE)
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": sha256(LOGIN), "name": "Login", "type": "mutation", "body": LOGIN}],
    }
    (root / "persisted-query-manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
async def locked(tmp_path_factory: pytest.TempPathFactory, frontend: Path) -> AsyncIterator[tuple[Process, Path]]:
    tmp = tmp_path_factory.mktemp("allowlist")
    operations = tmp / "operations.json"
    done = await asyncio.to_thread(register, operations, frontend, data_dir=tmp)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"file": str(operations), "added": 2, "operations": 2}
    settings = {
        "graphql_allowlist_only": "true",
        "graphql_operations_file": operations,
        "rate_limit_per_minute": 10_000,
    }
    async with spawn_server(tmp, settings, name="allowlist") as proc:
        yield proc, operations


@pytest.fixture
async def http(locked: tuple[Process, Path]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=locked[0].base_url, timeout=30) as client:
        yield client


async def post(http: httpx.AsyncClient, user: UserHandle | None, **body: Any) -> httpx.Response:
    return await http.post("/graphql", json=body, headers=user.headers if user else {})


def refused(answer: httpx.Response) -> bool:
    return (
        answer.status_code == 403 and answer.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
    )


async def test_registered_operations_run_by_text_and_by_hash(http: httpx.AsyncClient) -> None:
    user = await register_user(http)
    for body in ({"query": ME_SENT}, {"query": ME_FILE, "operationName": "Me"}):
        answer = await post(http, user, **body)
        assert answer.json()["data"]["me"]["email"] == user.email, answer.text
    printed = print_ast(parse(ME_FILE))  # what Apollo's APQ hashes
    by_hash = await post(http, user, extensions={"persistedQuery": {"version": 1, "sha256Hash": sha256(printed)}})
    assert by_hash.json()["data"]["me"]["email"] == user.email, by_hash.text
    login = {"input": {"email": user.email, "password": user.password}}
    by_manifest = await post(
        http, None, extensions={"persistedQuery": {"version": 1, "sha256Hash": sha256(LOGIN)}}, variables=login
    )
    assert by_manifest.json()["data"]["login"]["__typename"], by_manifest.text


async def test_anything_else_is_refused_and_apq_registers_nothing(http: httpx.AsyncClient) -> None:
    user = await register_user(http)
    assert refused(await post(http, user, query=PROJECTS))
    assert refused(await post(http, user, query="{ __schema { types { name } } }"))
    assert refused(await post(http, user, query=ME_SENT.replace("email", "email id")))  # a changed operation
    apq = {"persistedQuery": {"version": 1, "sha256Hash": sha256(PROJECTS)}}
    assert refused(await post(http, user, query=PROJECTS, extensions=apq))
    missing = await post(http, user, extensions=apq)
    assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND", missing.text


async def test_websocket_operations_obey_the_list(locked: tuple[Process, Path], http: httpx.AsyncClient) -> None:
    user = await register_user(http)
    async with graphql_socket(locked[0].ws_url, user.access_token) as ws:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": PROJECTS}}))
        answer = await next_message(ws, "1")
        assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
        await ws.send(json.dumps({"id": "2", "type": "subscribe", "payload": {"query": ME_SENT}}))
        answer = await next_message(ws, "2")
        assert answer["type"] == "next" and answer["payload"]["data"]["me"]["email"] == user.email, answer


async def test_operations_registered_later_run_without_a_restart(
    locked: tuple[Process, Path], http: httpx.AsyncClient, tmp_path: Path
) -> None:
    user = await register_user(http)
    (tmp_path / "projects.graphql").write_text(PROJECTS)
    done = await asyncio.to_thread(register, locked[1], tmp_path / "projects.graphql", data_dir=tmp_path)
    assert done.returncode == 0 and json.loads(done.stdout)["operations"] == 3, done.stderr
    deadline = time.monotonic() + 30
    while refused(answer := await post(http, user, query=PROJECTS)) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert answer.json()["data"]["projects"]["nodes"] == [], answer.text


def test_operations_that_do_not_validate_are_not_registered(tmp_path: Path) -> None:
    (tmp_path / "bad.graphql").write_text("query Bad { me { noSuchField } }")
    (tmp_path / "good.graphql").write_text(PROJECTS)
    operations = tmp_path / "operations.json"
    done = register(operations, tmp_path / "good.graphql", tmp_path / "bad.graphql", data_dir=tmp_path)
    assert done.returncode == 1 and "noSuchField" in done.stderr, done.stderr
    assert not operations.exists()
    (tmp_path / "broken.json").write_text("[1, 2]")
    done = register(operations, tmp_path / "broken.json", data_dir=tmp_path)
    assert done.returncode == 1 and "manifest" in done.stderr, done.stderr


def test_a_broken_operations_file_keeps_what_was_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("runplane.operations_file.RELOAD_SECONDS", 0.0)
    path = tmp_path / "operations.json"
    registry = OperationsFile(path)
    assert registry.document(sha256(PROJECTS)) is None  # no file: nothing is registered
    write_operations(path, {sha256(PROJECTS): PROJECTS})
    assert registry.document(sha256(PROJECTS)) == PROJECTS
    for broken in ("{not json", '{"version": 1, "operations": {"x": "query {"}}', "[]"):
        path.write_text(broken + " " * len(broken))  # another size: seen as a change
        assert registry.document(sha256(PROJECTS)) == PROJECTS and not registry.lists("query {")
