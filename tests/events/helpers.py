"""Test helpers for the event transport: a fake event log, a stream collector, a private redis-server."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from pathlib import Path
from typing import Any

import redis

from runplane.events import ControlSignal, EventBus, RunEventMessage

BusFactory = Callable[..., Awaitable[EventBus]]


class EventLog:
    """Stands in for the DB event log of one run: append assigns the next seq."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.events: list[RunEventMessage] = []
        self.finished = False
        self.replay_calls = 0
        self.replay_delay = 0.0
        self.replay_started = asyncio.Event()  # set once a reader has subscribed and reads the log

    def append(self, type: str = "content", **payload: Any) -> RunEventMessage:
        event = RunEventMessage(self.run_id, len(self.events) + 1, type, payload)
        self.events.append(event)
        return event

    async def replay(self, after: int) -> list[RunEventMessage]:
        self.replay_calls += 1
        self.replay_started.set()
        if self.replay_delay:
            await asyncio.sleep(self.replay_delay)
        return [e for e in self.events if e.sequence > after]

    async def is_finished(self) -> bool:
        return self.finished

    async def emit(self, bus: EventBus, type: str = "content", **payload: Any) -> RunEventMessage:
        event = self.append(type, **payload)  # log first, then publish (rule 7)
        await bus.publish(event)
        return event

    async def finish(self, bus: EventBus, status: str = "completed") -> None:
        await self.emit(bus, "status", status=status)
        self.finished = True
        await bus.publish_control(self.run_id, ControlSignal.END_STREAM)


async def collect(source: AsyncGenerator[RunEventMessage, None], timeout: float = 10.0) -> list[int]:
    """Drains a follow_run iterator into its list of seqs; fails if it does not end in time."""

    async def drain() -> list[int]:
        async with aclosing(source) as events:
            return [event.sequence async for event in events]

    return await asyncio.wait_for(drain(), timeout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisProcess:
    """A private redis-server this test may kill and restart on the same port."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            "--logfile",
            str(self.workdir / "redis.log"),
        ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
