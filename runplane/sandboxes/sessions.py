"""Named background sessions (dev servers, watchers) with a bounded, resumable output log."""

from __future__ import annotations

import asyncio
import re
import signal
from collections.abc import AsyncGenerator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from runplane.clock import now
from runplane.models.choices import SessionStatus
from runplane.sandboxes.errors import SandboxInputError
from runplane.sandboxes.process import QUOTA_NOTICE, Running, Watch, exit_code_of, signal_group, supervise

SESSION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
TAIL_BYTES = 4096


def validate_session_name(name: str) -> str:
    if not isinstance(name, str) or not SESSION_NAME.match(name) or name in (".", ".."):
        raise SandboxInputError("session name must match ^[A-Za-z0-9_.-]{1,64}$")
    return name


@dataclass(frozen=True)
class OutputChunk:
    offset: int  # absolute offset of data[0] in everything the session has printed
    data: bytes

    @property
    def next_offset(self) -> int:
        return self.offset + len(self.data)

    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


class OutputBuffer:
    """Ring buffer of the last `cap` bytes with absolute offsets.

    Offsets never reset, so a reader (an SSE client after reconnecting) resumes from the last
    offset it saw; if that part was already dropped, it gets the oldest byte still kept and can
    tell from `chunk.offset > asked` that it missed something.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._data = bytearray()
        self.start = 0  # absolute offset of _data[0]
        self.closed = False
        self._changed = asyncio.Event()

    @property
    def end(self) -> int:
        return self.start + len(self._data)

    def append(self, chunk: bytes) -> bool:
        self._data += chunk
        excess = len(self._data) - self.cap
        if excess > 0:
            del self._data[:excess]
            self.start += excess
        self._wake()
        return True  # a session never stops reading: it keeps the newest output

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        # Replace the event so waiters woken now do not see it set on their next wait.
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def read(self, after_offset: int = 0, limit: int | None = None) -> OutputChunk:
        begin = min(max(after_offset, self.start), self.end)
        stop = self.end if limit is None else min(self.end, begin + limit)
        return OutputChunk(begin, bytes(self._data[begin - self.start : stop - self.start]))

    def tail(self, size: int) -> bytes:
        return bytes(self._data[-size:])

    async def follow(self, from_offset: int = 0) -> AsyncGenerator[OutputChunk, None]:
        """Yield output from from_offset on, live, until the session has ended and all is read."""
        offset = from_offset
        while True:
            changed = self._changed
            chunk = self.read(offset, limit=self.cap)
            if chunk.data:
                offset = chunk.next_offset
                yield chunk
            elif self.closed:
                return
            else:
                await changed.wait()


@dataclass(frozen=True)
class SessionInfo:
    """A session as it is at one moment (its status among the rest)."""

    name: str
    status: SessionStatus
    exit_code: int | None
    started_at: datetime
    completed_at: datetime | None
    output_tail: str
    command: str
    port: int | None
    output_offset: int  # end offset of the output so far, for resuming a stream

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Session:
    """One background process. Its supervisor task owns the process from start to reap."""

    def __init__(
        self,
        name: str,
        command: str,
        proc: Running,
        buffer: OutputBuffer,
        port: int | None,
        timeout: float | None,
        watch: Watch | None = None,
    ) -> None:
        self.name, self.command, self.port = name, command, port
        self.proc, self.buffer = proc, buffer  # buffer is the sink proc was spawned with
        self.started_at = now()
        self.completed_at: datetime | None = None
        self.stopped = False
        self.timed_out = False
        self.task = asyncio.ensure_future(self._run(timeout, watch))

    async def _run(self, timeout: float | None, watch: Watch | None) -> None:
        try:
            self.timed_out = await supervise(self.proc, timeout, watch)
            if self.proc.watch_fired:
                self.buffer.append(QUOTA_NOTICE)
        finally:
            self.completed_at = now()
            self.buffer.close()

    @property
    def running(self) -> bool:
        return not self.task.done()

    def status(self) -> SessionInfo:
        state = SessionStatus.RUNNING
        if not self.running:
            killed = self.stopped or self.timed_out or (self.proc.returncode or 0) < 0
            state = SessionStatus.KILLED if killed else SessionStatus.EXITED
        return SessionInfo(
            name=self.name,
            status=state,
            exit_code=None if self.running else exit_code_of(self.proc.returncode),
            started_at=self.started_at,
            completed_at=self.completed_at,
            output_tail=self.buffer.tail(TAIL_BYTES).decode("utf-8", errors="replace"),
            command=self.command,
            port=self.port,
            output_offset=self.buffer.end,
        )

    async def stop(self, grace: float) -> None:
        """SIGTERM the group, SIGKILL after `grace` seconds; returns once reaped."""
        if not self.running:
            return
        self.stopped = True
        signal_group(self.proc.pid, signal.SIGTERM)
        done, _ = await asyncio.wait({self.task}, timeout=grace)
        if not done:
            signal_group(self.proc.pid, signal.SIGKILL)
            await asyncio.wait({self.task})
