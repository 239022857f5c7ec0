"""GraphQL test helpers: seeding rows, classifying counted SQL, graphql-transport-ws operations."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import connect

import runplane.resolvers.auth as auth_ops
from runplane.models import Message, Project, Thread
from tests.support import UserHandle

TABLE = re.compile(r'\bFROM\s+"?([a-z_]+)"?', re.IGNORECASE)


def tables(statements: Iterable[str]) -> Counter[str]:
    """Which table each counted statement reads (the first FROM naming a table)."""
    found: Counter[str] = Counter()
    for statement in statements:
        match = TABLE.search(statement)
        found[match.group(1) if match else statement.split(None, 1)[0].upper()] += 1
    return found


def forget_live_sessions() -> None:
    """The server (same process) trusts a confirmed session for 5 s; forget that so the lookup is counted."""
    auth_ops._live_sessions.clear()


@dataclass
class Seeded:
    projects: list[Project]
    threads: dict[uuid.UUID, list[Thread]]  # per project, oldest first
    messages: dict[uuid.UUID, list[Message]]  # per thread, oldest first


async def seed(user: UserHandle, projects: int, threads: int, messages: int, *, tag: str = "") -> Seeded:
    """Rows straight through the ORM (the server shares this process and database); names say where they belong."""
    owner = uuid.UUID(user.user_id)
    made = Seeded([], {}, {})
    for p in range(projects):
        project = await Project.create(owner_id=owner, name=f"{tag}p{p}")
        made.projects.append(project)
        made.threads[project.id] = []
        for t in range(threads):
            thread = await Thread.create(owner_id=owner, project_id=project.id, title=f"{tag}p{p}-t{t}")
            made.threads[project.id].append(thread)
            made.messages[thread.id] = [
                await Message.create(thread_id=thread.id, role="user", content=f"{tag}p{p}-t{t}-m{m}")
                for m in range(messages)
            ]
    return made


async def ws_execute(
    ws_url: str, user: UserHandle, operations: list[tuple[str, dict[str, Any]]]
) -> list[list[dict[str, Any]]]:
    """Run operations one after another on ONE graphql-transport-ws connection; the messages of each."""
    results: list[list[dict[str, Any]]] = []
    async with connect(ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {user.access_token}"}})
        )
        assert json.loads(await socket.recv())["type"] == "connection_ack"
        for index, (query, variables) in enumerate(operations):
            op_id = str(index)
            await socket.send(
                json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
            )
            messages: list[dict[str, Any]] = []
            while True:
                message = json.loads(await socket.recv())
                if message.get("type") == "ping":
                    await socket.send(json.dumps({"type": "pong"}))
                    continue
                messages.append(message)
                if message.get("type") in {"complete", "error"} and message.get("id") == op_id:
                    break
            results.append(messages)
    return results
