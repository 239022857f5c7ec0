"""Shared pieces of the fan-out benchmarks: a runplane server subprocess, a run held open by the bench
(it plays the worker: writes events to the log and publishes them on Redis), and lean clients."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
JWT_SECRET = "bench-secret-" + "x" * 40
SUBSCRIPTION = "subscription($id: ID!, $after: Int!) { runEvents(runId: $id, after: $after) { sequence type payload } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base_url: str
    ws_url: str
    database_url: str
    process: subprocess.Popen[bytes]
    data_dir: Path


@asynccontextmanager
async def running_server(
    *, tree: str | None = None, cpus: str | None = None, **env_overrides: str
) -> AsyncIterator[Server]:
    """`runplane serve` in its own process (the load client is beside it, not inside it).

    `tree`: run the server from another source tree (e.g. an export of the previous commit), for a
    before/after comparison in the same run. `cpus`: pin the server with `taskset -c cpus`."""
    data_dir = Path(tempfile.mkdtemp(prefix="runplane-bench-"))
    port = free_port()
    database_url = env_overrides.pop("RUNPLANE_DATABASE_URL", f"sqlite://{data_dir / 'bench.sqlite3'}")
    env = {
        **os.environ,
        "RUNPLANE_DATA_DIR": str(data_dir),
        "RUNPLANE_DATABASE_URL": database_url,
        "RUNPLANE_REDIS_URL": REDIS_URL,
        "RUNPLANE_RUN_QUEUE": "inprocess",
        "RUNPLANE_JWT_SECRET": JWT_SECRET,
        "RUNPLANE_MAX_STREAMS_PER_USER": "0",
        "RUNPLANE_RATE_LIMIT_PER_MINUTE": "0",
        "RUNPLANE_RUN_STARTS_PER_MINUTE": "0",
        "RUNPLANE_REGISTRATIONS_PER_HOUR": "0",  # every burst registers a user from 127.0.0.1
        "RUNPLANE_LOG_LEVEL": "WARNING",
        "RUNPLANE_UNTRUSTED_PORT": str(free_port()),  # sites and previews: a free port, not --port + 1
        # No plan caps or token quota in the way of a benchmark's runs and projects.
        "RUNPLANE_BILLING_DEFAULT_PLAN": "premium",
        **env_overrides,
    }
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "runplane.cli", "serve", "--port", str(port)]
    if profile := os.environ.get("BENCH_SERVER_PROFILE"):  # py-spy flame data of the server alone
        command = ["py-spy", "record", "-r", "250", "-f", "raw", "-o", profile, "--", *command]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    process = subprocess.Popen(command, env=env, cwd=tree)
    server = Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/graphql", database_url, process, data_dir)
    try:
        await _wait_healthy(server)
        yield server
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()


async def _wait_healthy(server: Server) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                if (await client.get(server.base_url + "/api/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


@dataclass
class HeldRun:
    """A run the bench owns: it is 'running' under the bench's lease, and the bench writes its events."""

    run_id: uuid.UUID
    token: str
    bus: Any
    published: int = 0

    async def publish(self, type: str, payload: dict[str, Any]) -> None:
        from runplane.agents import lifecycle

        class _Services:  # lifecycle.emit needs only the bus
            event_bus = self.bus

        await lifecycle.emit(_Services(), self.run_id, type, payload)  # type: ignore[arg-type]
        self.published += 1

    async def append_only(self, type: str, payload: dict[str, Any]) -> Any:
        from runplane.events.log import append_event

        return await append_event(self.run_id, type, payload)

    async def finish(self) -> None:
        from runplane.agents import lifecycle
        from runplane.config import Settings

        class _Services:  # finish charges the run too: it reads the settings
            event_bus = self.bus
            settings = Settings()

        await lifecycle.finish(_Services(), self.run_id, "completed")  # type: ignore[arg-type]


@asynccontextmanager
async def held_run(server: Server) -> AsyncIterator[HeldRun]:
    from tortoise import Tortoise

    from runplane.config import tortoise_config
    from runplane.events.redis_bus import RedisEventBus
    from runplane.models import AgentRun

    token, thread_id, project_id, user_id = await _user_with_thread(server)
    await Tortoise.init(config=tortoise_config(server.database_url), _enable_global_fallback=True)
    bus = RedisEventBus(REDIS_URL)
    await bus.start()
    run = await AgentRun.create(
        owner_id=user_id,
        project_id=project_id,
        thread_id=thread_id,
        active_thread_id=thread_id,
        model="scripted/demo",
        status="running",
        worker_id="bench",
        lease_expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    try:
        yield HeldRun(run.id, token, bus)
    finally:
        await bus.stop()
        await Tortoise.close_connections()


async def _user_with_thread(server: Server) -> tuple[str, str, str, str]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        tokens = (
            await client.post(
                "/api/auth/register",
                json={"email": f"bench-{uuid.uuid4().hex[:8]}@example.com", "password": "bench password"},
            )
        ).json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        me = (await client.get("/api/auth/me", headers=headers)).json()
        project = (await client.post("/api/projects", json={"name": "bench"}, headers=headers)).json()
        thread = (await client.post("/api/threads", json={"project_id": project["project_id"]}, headers=headers)).json()
    return tokens["access_token"], thread["thread_id"], project["project_id"], me["id"]


@dataclass
class Receiver:
    """One subscriber: records sequences (to prove nothing lost or repeated) and receive times."""

    sequences: list[int] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, event: dict[str, Any]) -> None:
        self.sequences.append(int(event["sequence"]))
        sent = event.get("payload", {}).get("t")
        if sent is not None:
            self.latencies.append(time.time() - float(sent))
        self.ready.set()


async def ws_subscriber(server: Server, run: HeldRun, receiver: Receiver) -> None:
    async with websockets.connect(
        server.ws_url, subprotocols=["graphql-transport-ws"], max_queue=None, open_timeout=60, ping_interval=None
    ) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {run.token}"}}))
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "id": "1",
                    "type": "subscribe",
                    "payload": {"query": SUBSCRIPTION, "variables": {"id": str(run.run_id), "after": 0}},
                }
            )
        )
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] == "next":
                receiver.record(message["payload"]["data"]["runEvents"])
            elif message["type"] in {"complete", "error"}:
                break
    receiver.done.set()


async def sse_subscriber(server: Server, run: HeldRun, receiver: Receiver) -> None:
    """A lean EventSource: one raw HTTP/1.1 request, `data:` lines parsed as they come."""
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 20)
    writer.write(
        f"GET /api/agent-run/{run.run_id}/stream?token={run.token} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    try:
        while line := await reader.readline():
            if line.startswith(b"data: "):
                event = json.loads(line[6:])
                receiver.record({"sequence": event["sequence"], "payload": event})
                if event.get("type") == "status" and event.get("status") in {"completed", "failed", "stopped"}:
                    break
    finally:
        writer.close()
        receiver.done.set()


def lost_and_repeated(receivers: list[Receiver], expected: list[int]) -> tuple[int, int]:
    lost = repeated = 0
    for receiver in receivers:
        got = receiver.sequences
        lost += len(set(expected) - set(got))
        repeated += len(got) - len(set(got))
    return lost, repeated


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


NODE_CLIENT = Path(__file__).resolve().parent / "js" / "fanout_load.mjs"


class NodeLoad:
    """The Node.js load client (bench/js/fanout_load.mjs): all subscribers in one Node process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def _line(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not raw:
            raise RuntimeError("node load client exited early")
        return dict(json.loads(raw))

    async def ready(self, timeout: float = 120) -> None:
        """Every subscriber received its first event."""
        message = await self._line(timeout)
        assert message.get("ready"), message

    async def finish(self, last_seq: int, timeout: float = 300) -> dict[str, Any]:
        """Tells the client the stream's last sequence; returns its summary once every subscriber ended."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"expect": last_seq}).encode() + b"\n")
        await self.process.stdin.drain()
        return await self._line(timeout)


@asynccontextmanager
async def node_load(
    server: Server, run: HeldRun, transport: str, subscribers: int, *, cpus: str | None = None
) -> AsyncIterator[NodeLoad]:
    command = [
        "node",
        str(NODE_CLIENT),
        "--transport",
        transport,
        "--base",
        server.base_url,
        "--token",
        run.token,
        "--run",
        str(run.run_id),
        "--subscribers",
        str(subscribers),
    ]
    if cpus is not None:
        command = ["taskset", "-c", cpus, *command]
    process = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=1 << 20
    )
    try:
        yield NodeLoad(process)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()
