"""Commands and sessions in a sandbox: one-shot execution, long-running sessions, their output streams."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from runplane.errors import InvalidInput, NotFound
from runplane.models.choices import SessionStatus
from runplane.numbers import ascii_int
from runplane.resolvers import rate_limits
from runplane.resolvers.context import RequestContext
from runplane.resolvers.sandboxes.files import user_path
from runplane.resolvers.sandboxes.lifecycle import open_sandbox
from runplane.resolvers.validation import RawId, clean_text
from runplane.sandboxes import (
    CommandResult,
    OutputChunk,
    Readiness,
    SandboxConflictError,
    SandboxHandle,
    SessionInfo,
)

MAX_COMMAND = 128 * 1024
MAX_TIMEOUT_SECONDS = 86_400  # a command's or a session's own time limit, at most a day
MAX_ENV_VARS = 200
MAX_SESSION_NAME = 64
MAX_OUTPUT_OFFSET = 10**12  # a byte offset into a session's output: far past any real output, a bounded integer
READY_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class Execution:
    """A blocking command's result, or the session a non-blocking one runs in."""

    result: CommandResult | None = None
    session: SessionInfo | None = None


async def execute(
    ctx: RequestContext,
    *,
    sandbox_id: RawId,
    command: str,
    cwd: str | None = None,
    timeout: float | None = None,
    blocking: bool = True,
    session_name: str | None = None,
    env: object = None,  # JSON from either transport: _env checks it is an object of strings
    dev_server: bool = False,
    port: bool | Literal["auto"] | None = None,  # ports are handed out, never chosen (_wants_port)
) -> Execution:
    """Blocking: run and return the output (bounded by time and size). Otherwise start a named session;
    `dev_server` (or `port: true`) gives it a port of its own, in its environment as PORT."""
    text = _command(command)
    wall = _timeout(timeout)
    environment = _env(env)
    wants_port = _wants_port(dev_server, port)
    if not isinstance(blocking, bool):
        raise InvalidInput("blocking must be a boolean", field="blocking")
    _, sandbox = await open_sandbox(ctx, sandbox_id, write=True)
    directory = user_path(cwd)
    if blocking and not wants_port:
        return Execution(result=await sandbox.execute(text, cwd=directory, timeout=wall, env=environment))
    name = _session_name(session_name, wants_port)
    if any(s.name == name and s.status == SessionStatus.RUNNING for s in sandbox.list_sessions()):
        raise SandboxConflictError(f"session {name} is already running")  # before a port is taken for it
    # Every session gets a port of its own, in PORT: `cd app && pnpm dev`, started without dev_server (as
    # Cheatcode's web app starts it), is then previewable like one that asked.
    port_number = sandbox.allocate_port()
    status = await sandbox.start_session(name, text, cwd=directory, env=environment, port=port_number, timeout=wall)
    return Execution(session=status)


def _command(command: object) -> str:
    if not isinstance(command, str) or not command.strip():
        raise InvalidInput("command must be a non-empty string", field="command")
    if len(command) > MAX_COMMAND:
        raise InvalidInput(f"command must be at most {MAX_COMMAND} characters", field="command")
    return command


def _timeout(timeout: object) -> float | None:
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_TIMEOUT_SECONDS:
        raise InvalidInput("timeout must be a positive number of seconds", field="timeout")
    return float(timeout)


def _env(env: object) -> dict[str, str] | None:
    if env is None:
        return None
    if (
        not isinstance(env, dict)
        or len(env) > MAX_ENV_VARS
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())
    ):
        raise InvalidInput("env must be an object of string values", field="env")
    return env


def _wants_port(dev_server: object, port: object) -> bool:
    """Ports are handed out by the sandbox (a chosen number could point the preview proxy at any local
    service): `port: true` or `"auto"` asks for one like `dev_server: true` does."""
    if port is not None and port is not False:
        if port is not True and port != "auto":
            raise InvalidInput(
                "port cannot be chosen: pass dev_server: true (or port: true) and read PORT", field="port"
            )
        return True
    if not isinstance(dev_server, bool):
        raise InvalidInput("dev_server must be a boolean", field="dev_server")
    return dev_server


def _session_name(name: object, dev_server: bool) -> str:
    if name is None or name == "":
        return "dev-server" if dev_server else f"cmd-{uuid.uuid4().hex[:12]}"
    return clean_text(name, "session_name", max_length=MAX_SESSION_NAME)


async def session_status(ctx: RequestContext, *, sandbox_id: RawId, name: str) -> SessionInfo:
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    return sandbox.session_status(_name(name))


async def list_sessions(ctx: RequestContext, *, sandbox_id: RawId) -> list[SessionInfo]:
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    return sandbox.list_sessions()


async def session_output(ctx: RequestContext, *, sandbox_id: RawId, name: str, after_offset: int = 0) -> OutputChunk:
    _, sandbox = await open_sandbox(ctx, sandbox_id)
    return sandbox.session_output(_name(name), max(0, after_offset))


async def stop_session(ctx: RequestContext, *, sandbox_id: RawId, name: str) -> SessionInfo:
    _, sandbox = await open_sandbox(ctx, sandbox_id, write=True)
    return await sandbox.stop_session(_name(name))


def _name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput("session name is required", field="session_name")
    return name


@dataclass(frozen=True)
class StreamItem:
    """One item of a session stream: output, readiness of a dev server, the end, or a heartbeat."""

    kind: Literal["output", "ready", "exit", "ping"]
    chunk: OutputChunk | None = None
    readiness: Readiness | None = None
    status: SessionInfo | None = None


@dataclass
class SessionStream:
    sandbox_id: uuid.UUID
    sandbox: SandboxHandle
    name: str
    from_offset: int
    detect_ready: bool
    release: Callable[[], Awaitable[None]]  # gives the user's stream slot back


async def open_session_stream(
    ctx: RequestContext,
    *,
    sandbox_id: RawId,
    name: str | None = None,
    from_offset: int | str = 0,  # a string from a query or Last-Event-ID: _offset parses it
    dev_server: bool = False,
) -> SessionStream:
    """Authorize a live stream of a session's output (the dev server's, by default, when `dev_server`)
    and take one of the user's stream slots."""
    row, sandbox = await open_sandbox(ctx, sandbox_id)
    chosen = dev_server_session(sandbox, name).name if dev_server else _name(name)
    sandbox.session_status(chosen)  # NotFound now, not after the response started
    offset = _offset(from_offset)
    release = await rate_limits.acquire_stream_slot(ctx, ctx.user_id)
    return SessionStream(row.id, sandbox, chosen, offset, dev_server, release)


def _offset(value: object) -> int:
    parsed = ascii_int(value) if isinstance(value, str) else value
    if isinstance(parsed, int) and not isinstance(parsed, bool) and 0 <= parsed < MAX_OUTPUT_OFFSET:
        return parsed
    raise InvalidInput(f"from_offset must be an integer from 0 to {MAX_OUTPUT_OFFSET - 1}", field="from_offset")


async def follow_session(stream: SessionStream, *, heartbeat: float = 15.0) -> AsyncGenerator[StreamItem, None]:
    """Output from the offset on, live, then an `exit` item; a `ready` item once a dev server answers;
    a `ping` after `heartbeat` seconds of silence."""
    queue: asyncio.Queue[StreamItem] = asyncio.Queue(maxsize=64)
    tasks = [asyncio.create_task(_pump_output(stream, queue))]
    if stream.detect_ready:
        tasks.append(asyncio.create_task(_pump_ready(stream, queue)))
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                yield StreamItem("ping")
                continue
            yield item
            if item.kind == "exit":
                return
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await stream.release()


async def _pump_output(stream: SessionStream, queue: asyncio.Queue[StreamItem]) -> None:
    async for chunk in stream.sandbox.stream_session(stream.name, stream.from_offset):
        await queue.put(StreamItem("output", chunk=chunk))
    await queue.put(StreamItem("exit", status=stream.sandbox.session_status(stream.name)))


async def _pump_ready(stream: SessionStream, queue: asyncio.Queue[StreamItem]) -> None:
    readiness = await stream.sandbox.wait_for_dev_server(stream.name, timeout=READY_TIMEOUT_SECONDS)
    if readiness.ready:
        await queue.put(StreamItem("ready", readiness=readiness, status=stream.sandbox.session_status(stream.name)))


def dev_server_session(sandbox: SandboxHandle, name: str | None = None) -> SessionInfo:
    """The named session, or the newest running session that was given a port."""
    if name not in (None, ""):
        return sandbox.session_status(_name(name))
    with_port = [s for s in sandbox.list_sessions() if s.port is not None]
    running = [s for s in with_port if s.status == SessionStatus.RUNNING]
    chosen = max(running or with_port, key=lambda s: s.started_at, default=None)
    if chosen is None:
        raise NotFound("No dev server session: start one with execute and dev_server: true")
    return chosen
