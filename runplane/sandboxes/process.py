"""Starting and supervising one sandbox process: wall time, output cap, whole-group kill."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runplane.sandboxes.cgroups import CommandGroup
from runplane.sandboxes.isolation import LaunchSpec, prepare_child

# After the shell exits we kill its group, then read what is left in the pipe for at most this
# long: a process that escaped the group (setsid, only possible without bubblewrap) may hold
# the pipe open forever.
DRAIN_SECONDS = 1.0
QUOTA_NOTICE = b"\n[runplane: command killed: the workspace grew past its disk quota]\n"

# Returns when the command must be killed (sandboxes/quota.py's watch).
Watch = Callable[[], Awaitable[None]]

# Receives output; returns False when full (output cap reached): the command is then killed
# and what it still prints is discarded.
Sink = Callable[[bytes], bool]


@dataclass(frozen=True)
class CommandResult:
    exit_code: int  # 128+N when killed by signal N, as shells report it
    output: str  # combined stdout+stderr, UTF-8 with replacement, at most max_output_bytes
    truncated: bool
    timed_out: bool
    duration_ms: float
    output_bytes: int  # bytes read from the command before it ended or was cut
    over_quota: bool = False  # killed because the workspace grew past its disk quota


class _Pipe(asyncio.SubprocessProtocol):
    """Receives the merged stdout/stderr pipe and the exit, without waiting on each other.

    (asyncio's high-level Process.wait() only returns once the pipes are closed too, which a
    background child or a paused reader can delay forever; this protocol sees the exit itself.)
    Data past a full sink is discarded here, so memory stays bounded whatever the command does.
    """

    def __init__(self, sink: Sink) -> None:
        loop = asyncio.get_running_loop()
        self.sink = sink
        self.full: asyncio.Future[None] = loop.create_future()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | bytearray) -> None:
        if not self.full.done() and not self.sink(bytes(data)):
            self.full.set_result(None)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        _resolve(self.eof)

    def process_exited(self) -> None:
        _resolve(self.exited)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass
class Running:
    transport: asyncio.SubprocessTransport
    pipe: _Pipe
    group: CommandGroup | None = None  # its cgroup: every process left in it is killed when it ends
    watch_fired: bool = False  # supervise's watch ended it (a limit measured from outside)

    @property
    def pid(self) -> int:
        return self.transport.get_pid()

    @property
    def returncode(self) -> int | None:
        return self.transport.get_returncode()


async def spawn(spec: LaunchSpec, sink: Sink) -> Running:
    """Start in a new session so the whole group can be killed; stdin closed; stderr merged."""
    try:
        transport, pipe = await _exec(spec, sink)
    except BaseException:
        if spec.group is not None:
            spec.group.kill()  # empty: only removes its cgroup
        raise
    return Running(transport, pipe, spec.group)


async def _exec(spec: LaunchSpec, sink: Sink) -> tuple[asyncio.SubprocessTransport, _Pipe]:
    return await asyncio.get_running_loop().subprocess_exec(
        lambda: _Pipe(sink),
        *spec.argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=spec.cwd,
        env=spec.env,
        start_new_session=True,
        preexec_fn=functools.partial(
            prepare_child, spec.owner, spec.rlimits, spec.netns, spec.group.procs if spec.group else ()
        ),
    )


def signal_group(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by pid. Under bubblewrap the group holds only bwrap, whose
    death tears down the pid namespace (--die-with-parent), killing every descendant."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def exit_code_of(returncode: int | None) -> int:
    if returncode is None:
        return -1
    return 128 - returncode if returncode < 0 else returncode


async def supervise(running: Running, wall_time: float | None, watch: Watch | None = None) -> bool:
    """Wait until the process exits, its sink is full, wall time passes or `watch` returns (a limit
    measured from outside, such as the disk quota: running.watch_fired tells).

    Always ends with the process group killed, the process reaped and the pipe closed, also
    when cancelled. Returns True when the wall time was hit.
    """
    pipe = running.pipe
    timed_out = False
    watcher = asyncio.ensure_future(watch()) if watch is not None else None
    try:
        async with asyncio.timeout(wall_time):
            ends: set[asyncio.Future[None]] = {pipe.exited, pipe.full, *([watcher] if watcher else [])}
            await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        timed_out = True
    finally:
        if watcher is not None:
            running.watch_fired = watcher.done() and not watcher.cancelled() and watcher.exception() is None
            watcher.cancel()
        # Also kills leftovers of a shell that exited normally. Its pid is not reused while
        # its group has members; once empty, ESRCH is all we get (barring a pid wrap-around
        # within microseconds).
        signal_group(running.pid)
        await asyncio.wait({pipe.exited}, timeout=10)  # SIGKILL was sent: this is quick
        if running.group is not None:  # processes that left the group (setsid), without bubblewrap's pid ns
            await asyncio.shield(asyncio.to_thread(running.group.kill))
        await asyncio.wait({pipe.eof}, timeout=DRAIN_SECONDS)  # output still in the pipe
        running.transport.close()
    return timed_out


class CappedOutput:
    """Keeps the first `cap` bytes; refuses once more arrive so the caller kills the command.

    Killing (rather than reading and discarding until exit) is deliberate: a command that
    floods past the cap is almost always runaway, and its output is lost anyway.
    """

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.data = bytearray()
        self.total = 0
        self.overflowed = False

    def add(self, chunk: bytes) -> bool:
        if self.overflowed:
            return False
        self.total += len(chunk)
        room = self.cap - len(self.data)
        self.data += chunk[:room]
        self.overflowed = self.overflowed or len(chunk) > room
        return not self.overflowed


async def run_bounded(
    spec: LaunchSpec, *, wall_time: float, max_output: int, watch: Watch | None = None
) -> CommandResult:
    started = time.monotonic()
    capture = CappedOutput(max_output)
    running = await spawn(spec, capture.add)
    timed_out = await supervise(running, wall_time, watch)
    if running.watch_fired:
        capture.data += QUOTA_NOTICE
    return CommandResult(
        exit_code=exit_code_of(running.returncode),
        output=capture.data.decode("utf-8", errors="replace"),
        truncated=capture.overflowed,
        timed_out=timed_out,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
        output_bytes=capture.total,
        over_quota=running.watch_fired,
    )
