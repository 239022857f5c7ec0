"""Test helpers: a real runplane server on a free port, real HTTP clients, users with tokens."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from runplane.app import create_app
from runplane.config import Settings
from runplane.origins import bind_socket

POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
# Default plan of the test servers (RUNPLANE_BILLING_DEFAULT_PLAN; built-in table: no project or deployment
# caps, which many tests exceed). Tests of the caps move their user to `free`; the billing server of
# tests/billing/conftest.py keeps `free` as its default.
ROOMY_PLAN = "premium"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_database_kind() -> str:
    """`sqlite` (default) or `postgres`: .ci/run runs the suite once for each."""
    return os.environ.get("RUNPLANE_TEST_DATABASE", "sqlite")


def test_redis_url() -> str | None:
    return os.environ.get("RUNPLANE_TEST_REDIS_URL") or None


# Helpers, not tests: modules that import them must not have pytest collect them.
test_database_kind.__test__ = False  # type: ignore[attr-defined]
test_redis_url.__test__ = False  # type: ignore[attr-defined]


async def create_postgres_database() -> str:
    import asyncpg

    name = f"runplane_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_postgres_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def database_url(tmp: Path) -> tuple[str, str | None]:
    """(url, postgres database to drop afterwards)."""
    if test_database_kind() == "postgres":
        name = await create_postgres_database()
        return f"postgres://postgres@127.0.0.1:5432/{name}", name
    return f"sqlite://{tmp / 'runplane.sqlite3'}", None


@dataclass
class LiveServer:
    settings: Settings
    port: int
    server: uvicorn.Server
    task: asyncio.Task[None]
    app: Any

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/graphql"

    @property
    def untrusted_url(self) -> str:
        """Where this server's sites and previews are (their own origin), or the API's URL when they share it."""
        return f"http://127.0.0.1:{self.settings.untrusted_port}" if self.settings.untrusted_port else self.base_url

    async def stop(self) -> None:
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 15)


async def start_server(settings: Settings, *, untrusted: bool = True) -> LiveServer:
    """uvicorn in this event loop: real sockets, and the test can still reach the database directly. As with
    `runplane serve`, sites and previews get a listener of their own (runplane/origins.py) unless untrusted=False."""
    sockets = [bind_socket("127.0.0.1", 0)]
    port = int(sockets[0].getsockname()[1])
    if untrusted and not settings.untrusted_port:
        sockets.append(bind_socket("127.0.0.1", 0))
        settings = settings.model_copy(update={"untrusted_port": int(sockets[1].getsockname()[1])})
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        ws="runplane.ws_protocol:DirectWebSocketProtocol",
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=sockets))
    for _ in range(200):
        if server.started:
            break
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    else:
        raise RuntimeError("server did not start")
    return LiveServer(settings, port, server, task, app)


@dataclass
class UserHandle:
    email: str
    password: str
    access_token: str
    refresh_token: str
    user_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register_user(client: httpx.AsyncClient, **body: Any) -> UserHandle:
    email = body.pop("email", f"user-{uuid.uuid4().hex[:10]}@example.com")
    password = body.pop("password", "correct horse battery")
    response = await client.post("/api/auth/register", json={"email": email, "password": password, **body})
    assert response.status_code == 201, response.text
    tokens = response.json()
    handle = UserHandle(email, password, tokens["access_token"], tokens["refresh_token"])
    me = await client.get("/api/auth/me", headers=handle.headers)
    handle.user_id = me.json()["id"]
    return handle


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None, *, user: UserHandle | None = None
) -> dict[str, Any]:
    headers = user.headers if user else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


class QueryCounter(logging.Handler):
    """Counts SQL statements Tortoise sends (it logs each one to `tortoise.db_client` at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.statements.append(record.getMessage())


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    logger = logging.getLogger("tortoise.db_client")
    counter = QueryCounter()
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(counter)
    try:
        yield counter
    finally:
        logger.removeHandler(counter)
        logger.setLevel(previous)
