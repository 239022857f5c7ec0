"""Project sandboxes: lifecycle, files, commands and sessions, previews, snapshots.

Every operation goes through `owned_sandbox` (another user's sandbox is NotFound). Reading needs
projects:read; anything that writes files or runs commands needs sandbox:exec and wakes a
sandbox the idle reaper stopped. Sessions and ports live in the process that started them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import mimetypes
import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import jwt
from cachetools import TTLCache

from runplane.auth.abilities import PROJECTS_READ, SANDBOX_EXEC
from runplane.errors import DomainError, ErrorCode, InvalidInput, NotFound, PayloadTooLarge, Unauthenticated
from runplane.models import SandboxRecord
from runplane.numbers import ascii_int
from runplane.origins import untrusted_base_url
from runplane.resolvers import rate_limits
from runplane.resolvers.context import RequestContext
from runplane.resolvers.projects import owned_project
from runplane.resolvers.validation import clean_text, parse_uuid
from runplane.sandboxes import (
    CommandResult,
    FileInfo,
    FileTree,
    OutputChunk,
    Readiness,
    Sandbox,
    SandboxConflictError,
    SandboxLimitError,
    SessionStatus,
    SnapshotInfo,
    resolve_in_workspace,
    service,
)
from runplane.sandboxes.egress_proxy import PORT as EGRESS_PROXY_PORT

MAX_UPLOAD_FILES = 1000
MAX_DELETE_PATHS = 1000
MAX_COMMAND = 128 * 1024
READY_TIMEOUT_SECONDS = 600.0
WORKSPACE_PREFIX = "/workspace"  # the path commands see: accepted as the root in user paths too
ARCHIVE_FORMATS = ("tar.gz", "zip")


# -- ownership and lifecycle -------------------------------------------------------------------
async def owned_sandbox(ctx: RequestContext, sandbox_id: object, *, ability: str = PROJECTS_READ) -> SandboxRecord:
    user_id = ctx.require(ability)
    row = await SandboxRecord.get_or_none(id=parse_uuid(sandbox_id, "Sandbox"), owner_id=user_id)
    if row is None:
        raise NotFound("Sandbox not found")
    return row


async def _open(ctx: RequestContext, sandbox_id: object, *, write: bool = False) -> tuple[SandboxRecord, Sandbox]:
    """The caller's sandbox and its handle; writers wake a stopped sandbox."""
    row = await owned_sandbox(ctx, sandbox_id, ability=SANDBOX_EXEC if write else PROJECTS_READ)
    if write:
        row = await service.wake(ctx.services, row)
    return row, await ctx.services.sandboxes.open(str(row.id))


async def ensure_sandbox(ctx: RequestContext, *, project_id: object) -> SandboxRecord:
    """Create or wake the project's sandbox; concurrent calls get the same one."""
    ctx.require(SANDBOX_EXEC)
    project = await owned_project(ctx, project_id)
    return await service.ensure_for_project(ctx.services, project)


async def project_sandbox(ctx: RequestContext, *, project_id: object) -> SandboxRecord | None:
    project = await owned_project(ctx, project_id)
    return await SandboxRecord.get_or_none(project_id=project.id)


async def sandboxes_of_projects(ctx: RequestContext, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, SandboxRecord]:
    """Each project's sandbox, if it has one: one query for a page of projects (owner re-checked in it)."""
    user_id = ctx.require(PROJECTS_READ)
    rows = await SandboxRecord.filter(project_id__in=project_ids, owner_id=user_id)
    return {row.project_id: row for row in rows}


async def delete_sandbox(ctx: RequestContext, *, sandbox_id: object) -> uuid.UUID:
    """Stop everything it runs and remove its files; the project gets a fresh one on the next ensure."""
    row = await owned_sandbox(ctx, sandbox_id, ability=SANDBOX_EXEC)
    await ctx.services.sandboxes.destroy(str(row.id))
    await row.delete()
    return row.id


async def isolated(ctx: RequestContext) -> bool:
    return (await ctx.services.sandboxes.backend.isolation()).available


# -- files --------------------------------------------------------------------------------------
def user_path(value: object, field: str = "path", *, default: str | None = ".") -> str:
    """A workspace path as users write it: relative, or absolute under /workspace (what commands see)."""
    if value is None or value == "":
        if default is None:
            raise InvalidInput(f"{field} is required", field=field)
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string", field=field)
    if value == WORKSPACE_PREFIX or value.startswith(WORKSPACE_PREFIX + "/"):
        return value[len(WORKSPACE_PREFIX) :].lstrip("/") or "."
    return value


async def list_files(ctx: RequestContext, *, sandbox_id: object, path: object = None) -> list[FileInfo]:
    _, sandbox = await _open(ctx, sandbox_id)
    return await sandbox.list_files(user_path(path))


async def file_tree(
    ctx: RequestContext, *, sandbox_id: object, path: object = None, max_entries: int = 10_000
) -> FileTree:
    _, sandbox = await _open(ctx, sandbox_id)
    return await sandbox.tree(user_path(path), max_entries=max_entries)


async def _project_sandbox_id(ctx: RequestContext, project_id: object) -> uuid.UUID:
    row = await project_sandbox(ctx, project_id=project_id)
    if row is None:
        raise NotFound("This project has no sandbox yet")
    return row.id


async def list_project_files(ctx: RequestContext, *, project_id: object, path: object = None) -> list[FileInfo]:
    """The files of the project's sandbox (Cheatcode's `/project/{id}/git/files`)."""
    return await list_files(ctx, sandbox_id=await _project_sandbox_id(ctx, project_id), path=path)


async def read_project_file(ctx: RequestContext, *, project_id: object, path: object) -> FileContent:
    return await read_file(ctx, sandbox_id=await _project_sandbox_id(ctx, project_id), path=path)


@dataclass(frozen=True)
class FileContent:
    path: str
    data: bytes
    content_type: str

    @property
    def is_text(self) -> bool:
        return self.content_type.startswith("text/") or "charset=utf-8" in self.content_type


async def read_file(ctx: RequestContext, *, sandbox_id: object, path: object) -> FileContent:
    _, sandbox = await _open(ctx, sandbox_id)
    clean = user_path(path, default=None)
    data = await sandbox.read_file(clean)
    return FileContent(clean, data, guess_content_type(clean, data))


def guess_content_type(path: str, data: bytes) -> str:
    guessed, _ = mimetypes.guess_type(path, strict=False)
    text = _is_utf8_text(data)
    if guessed is None:
        return "text/plain; charset=utf-8" if text else "application/octet-stream"
    if text and (
        guessed.startswith("text/") or guessed in ("application/json", "application/javascript", "image/svg+xml")
    ):
        return f"{guessed}; charset=utf-8"
    return guessed


def _is_utf8_text(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


FilePairs = list[tuple[object, bytes]]


async def upload_files(
    ctx: RequestContext,
    *,
    sandbox_id: object,
    files: FilePairs | Callable[[int], Awaitable[FilePairs]],
) -> list[FileInfo]:
    """Write several files; every path is checked before the first one is written. `files` may be a
    reader called with the size limit once the caller is known to own the sandbox (a request body)."""
    _, sandbox = await _open(ctx, sandbox_id, write=True)
    limit = sandbox.limits.max_upload_bytes
    if callable(files):
        files = await files(limit)
    if not files:
        raise InvalidInput("No files were sent (multipart `file` parts)", field="file")
    if len(files) > MAX_UPLOAD_FILES:
        raise InvalidInput(f"At most {MAX_UPLOAD_FILES} files per upload", field="file")
    if sum(len(data) for _, data in files) > limit:
        raise PayloadTooLarge(f"Upload exceeds {limit} bytes")
    paths = [user_path(p, default=None) for p, _ in files]
    for path in paths:
        await asyncio.to_thread(resolve_in_workspace, sandbox.workspace, path)
    return [await sandbox.write_file(path, data) for path, (_, data) in zip(paths, files, strict=True)]


async def write_file(ctx: RequestContext, *, sandbox_id: object, path: object, data: bytes) -> FileInfo:
    (info,) = await upload_files(ctx, sandbox_id=sandbox_id, files=[(path, data)])
    return info


async def write_text_file(ctx: RequestContext, *, sandbox_id: object, path: object, content: object) -> FileInfo:
    await owned_sandbox(ctx, sandbox_id, ability=SANDBOX_EXEC)  # another user's sandbox: 404 before the body's 422
    if not isinstance(content, str):
        raise InvalidInput("content must be a string", field="content")
    return await write_file(ctx, sandbox_id=sandbox_id, path=path, data=content.encode())


async def delete_files(ctx: RequestContext, *, sandbox_id: object, paths: object) -> list[str]:
    if not isinstance(paths, list) or not paths or not all(isinstance(p, str) for p in paths):
        raise InvalidInput("paths must be a non-empty list of strings", field="paths")
    if len(paths) > MAX_DELETE_PATHS:
        raise InvalidInput(f"At most {MAX_DELETE_PATHS} paths at once", field="paths")
    _, sandbox = await _open(ctx, sandbox_id, write=True)
    return await sandbox.delete([user_path(p, default=None) for p in paths])


async def archive(ctx: RequestContext, *, sandbox_id: object, fmt: object = "tar.gz") -> AsyncGenerator[bytes, None]:
    """The workspace as tar.gz or zip, streamed; checked here, before a response starts."""
    if fmt not in ARCHIVE_FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(ARCHIVE_FORMATS)}", field="format")
    _, sandbox = await _open(ctx, sandbox_id)
    return sandbox.archive(fmt)  # type: ignore[arg-type]


# -- commands and sessions -----------------------------------------------------------------------
@dataclass(frozen=True)
class Execution:
    """A blocking command's result, or the session a non-blocking one runs in."""

    result: CommandResult | None = None
    session: SessionStatus | None = None


async def execute(
    ctx: RequestContext,
    *,
    sandbox_id: object,
    command: object,
    cwd: object = None,
    timeout: object = None,
    blocking: object = True,
    session_name: object = None,
    env: object = None,
    dev_server: object = False,
    port: object = None,
) -> Execution:
    """Blocking: run and return the output (bounded by time and size). Otherwise start a named session;
    `dev_server` (or `port: true`) gives it a port of its own, in its environment as PORT."""
    text = _command(command)
    wall = _timeout(timeout)
    environment = _env(env)
    wants_port = _wants_port(dev_server, port)
    if not isinstance(blocking, bool):
        raise InvalidInput("blocking must be a boolean", field="blocking")
    _, sandbox = await _open(ctx, sandbox_id, write=True)
    directory = user_path(cwd)
    if blocking and not wants_port:
        return Execution(result=await sandbox.execute(text, cwd=directory, timeout=wall, env=environment))
    name = _session_name(session_name, wants_port)
    if any(s.name == name and s.status == "running" for s in sandbox.list_sessions()):
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
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 86_400:
        raise InvalidInput("timeout must be a positive number of seconds", field="timeout")
    return float(timeout)


def _env(env: object) -> dict[str, str] | None:
    if env is None:
        return None
    if (
        not isinstance(env, dict)
        or len(env) > 200
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
    return clean_text(name, "session_name", max_length=64)


async def session_status(ctx: RequestContext, *, sandbox_id: object, name: object) -> SessionStatus:
    _, sandbox = await _open(ctx, sandbox_id)
    return sandbox.session_status(_name(name))


async def list_sessions(ctx: RequestContext, *, sandbox_id: object) -> list[SessionStatus]:
    _, sandbox = await _open(ctx, sandbox_id)
    return sandbox.list_sessions()


async def session_output(
    ctx: RequestContext, *, sandbox_id: object, name: object, after_offset: int = 0
) -> OutputChunk:
    _, sandbox = await _open(ctx, sandbox_id)
    return sandbox.session_output(_name(name), max(0, after_offset))


async def stop_session(ctx: RequestContext, *, sandbox_id: object, name: object) -> SessionStatus:
    _, sandbox = await _open(ctx, sandbox_id, write=True)
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
    status: SessionStatus | None = None


@dataclass
class SessionStream:
    sandbox_id: uuid.UUID
    sandbox: Sandbox
    name: str
    from_offset: int
    detect_ready: bool
    release: Any  # Callable[[], Awaitable[None]]: gives the user's stream slot back


async def open_session_stream(
    ctx: RequestContext,
    *,
    sandbox_id: object,
    name: object = None,
    from_offset: object = 0,
    dev_server: bool = False,
) -> SessionStream:
    """Authorize a live stream of a session's output (the dev server's, by default, when `dev_server`)
    and take one of the user's stream slots."""
    row, sandbox = await _open(ctx, sandbox_id)
    chosen = dev_server_session(sandbox, name).name if dev_server else _name(name)
    sandbox.session_status(chosen)  # NotFound now, not after the response started
    offset = _offset(from_offset)
    release = await rate_limits.acquire_stream_slot(ctx, ctx.user_id)
    return SessionStream(row.id, sandbox, chosen, offset, dev_server, release)


def _offset(value: object) -> int:
    if isinstance(value, str) and (parsed := ascii_int(value)) is not None:
        return parsed
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise InvalidInput("from_offset must be a non-negative integer", field="from_offset")


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


def dev_server_session(sandbox: Sandbox, name: object = None) -> SessionStatus:
    """The named session, or the newest running session that was given a port."""
    if name not in (None, ""):
        return sandbox.session_status(_name(name))
    with_port = [s for s in sandbox.list_sessions() if s.port is not None]
    running = [s for s in with_port if s.status == "running"]
    chosen = max(running or with_port, key=lambda s: s.started_at, default=None)
    if chosen is None:
        raise NotFound("No dev server session: start one with execute and dev_server: true")
    return chosen


# -- previews ---------------------------------------------------------------------------------------
PREVIEW_TYPE = "preview"


class PreviewUnavailable(DomainError):
    """The preview's dev server is not running (any more) in this process."""

    code = ErrorCode.PREVIEW_UNAVAILABLE
    status = 502


@dataclass(frozen=True)
class PreviewLink:
    url: str
    port: int
    session_name: str
    expires_at: datetime


async def preview_link(
    ctx: RequestContext,
    *,
    sandbox_id: object,
    base_url: str,
    session_name: object = None,
    kind: str = "web",
    port: int | None = None,
) -> PreviewLink:
    """A URL served by this server that proxies to the dev server's port, with a short-lived signed token
    in its path (an iframe can load it without an Authorization header)."""
    row, sandbox = await _open(ctx, sandbox_id)
    if await sandbox.has_own_network():
        port_number, name = await _listening_port(sandbox, session_name, port, kind)
    else:
        port_number, name = _session_port(sandbox, session_name, port)
    settings = ctx.settings
    expires = int(time.time()) + settings.preview_token_ttl_seconds
    token = _sign_preview(ctx, {"sub": str(ctx.user_id), "sbx": str(row.id), "port": port_number, "exp": expires})
    base = (settings.preview_base_url or untrusted_base_url(settings, base_url)).rstrip("/")  # never the API origin
    url = f"{base}/preview/{token}/"
    if kind == "expo":  # Expo Go opens exp:// (exps:// over TLS) and fetches the manifest over HTTP(S)
        url = (
            "exps://" + url.removeprefix("https://")
            if url.startswith("https://")
            else "exp://" + url.removeprefix("http://")
        )
    return PreviewLink(url, port_number, name, datetime.fromtimestamp(expires, UTC))


# A dev server started without a port of ours (Cheatcode's web app runs `pnpm dev`) listens where its framework
# likes: Next.js on 3000, Expo on 8081.
DEFAULT_PREVIEW_PORTS = {"web": 3000, "expo": 8081}


async def _listening_port(sandbox: Sandbox, session_name: object, port: int | None, kind: str) -> tuple[int, str]:
    """In the sandbox's own network namespace every port is its own: the asked port; else the dev-server
    session's PORT or the framework default, whichever something listens on; else the session's PORT (the
    preview answers 502 until its server listens, as one asked for right after the start)."""
    if port is not None:
        if not 0 < port < 65536:
            raise InvalidInput("port must be between 1 and 65535", field="port")
        if port == EGRESS_PROXY_PORT:  # runplane's own listener in there, not the sandbox's
            raise InvalidInput(f"port {port} is the sandbox's egress proxy", field="port")
        return port, ""
    session = None
    if session_name not in (None, "") or any(s.port is not None for s in sandbox.list_sessions()):
        session = dev_server_session(sandbox, session_name)
    default = DEFAULT_PREVIEW_PORTS.get(kind, 3000)
    if session is not None and session.port is not None and session.status == "running":
        if await sandbox.port_accepts(session.port) or not await sandbox.port_accepts(default):
            return session.port, session.name
        return default, ""
    if await sandbox.port_accepts(default):
        return default, ""
    if session is None:
        raise NotFound(f"No dev server session, and nothing listens on port {default} in the sandbox")
    raise PreviewUnavailable(f"Session {session.name} is not running")


def _session_port(sandbox: Sandbox, session_name: object, port: int | None) -> tuple[int, str]:
    """Sandboxes on this host's network: only a port runplane gave a running session (any other could be a
    service of this host's)."""
    session = dev_server_session(sandbox, session_name)
    if session.port is None:
        raise InvalidInput(f"Session {session.name} has no port: start it with dev_server: true", field="session_name")
    if port is not None and port != session.port:
        raise InvalidInput("a port can only be chosen where sandboxes have a network of their own", field="port")
    if session.status != "running":
        raise PreviewUnavailable(f"Session {session.name} is not running")
    return session.port, session.name


def _preview_key(secret: str) -> bytes:
    """A key of its own: a preview token is never an access token, nor the other way round."""
    return hmac.new(secret.encode(), b"runplane-preview-token", hashlib.sha256).digest()


def _sign_preview(ctx: RequestContext, claims: dict[str, Any]) -> str:
    payload = {**claims, "typ": PREVIEW_TYPE, "iat": int(time.time())}
    return jwt.encode(payload, _preview_key(ctx.settings.jwt_secret), algorithm="HS256")


@dataclass(frozen=True)
class PreviewTarget:
    sandbox: Sandbox
    port: int


async def open_preview(services: Any, token: str) -> PreviewTarget:
    """For the proxy: check the token, that its user still owns the sandbox and that the port is still
    its running dev server's; counts as activity (the idle reaper leaves a watched preview running)."""
    try:
        claims = jwt.decode(
            token,
            _preview_key(services.settings.jwt_secret),
            algorithms=["HS256"],
            options={"require": ["exp", "sub", "sbx", "port"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("Preview link expired: ask for a new one") from None
    except jwt.InvalidTokenError:
        raise NotFound("Preview not found") from None
    if claims.get("typ") != PREVIEW_TYPE:
        raise NotFound("Preview not found")
    if not await _owner_still_owns(claims["sbx"], claims["sub"]):
        raise NotFound("Preview not found")
    sandbox = services.sandboxes.loaded(claims["sbx"])
    port = claims["port"]
    if sandbox is None:
        raise PreviewUnavailable("The dev server of this preview is not running")
    # In its own namespace any port is the sandbox's own (and reachable from every process); on this host's
    # network only a running session's port is, in the process that started it.
    if not await sandbox.has_own_network() and not any(
        s.port == port and s.status == "running" for s in sandbox.list_sessions()
    ):
        raise PreviewUnavailable("The dev server of this preview is not running")
    sandbox.touch()
    return PreviewTarget(sandbox, port)


OWNER_CACHE_SECONDS = 5.0  # a page load fetches dozens of assets: one query per sandbox every few seconds
# Bounded (the least recently used make room) with real expiry: preview tokens name the keys.
_owner_cache: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=10_000, ttl=OWNER_CACHE_SECONDS)


async def _owner_still_owns(sandbox_id: str, user_id: str) -> bool:
    key = (sandbox_id, user_id)
    if key in _owner_cache:
        return True
    if not await SandboxRecord.filter(
        id=parse_uuid(sandbox_id, "Sandbox"), owner_id=parse_uuid(user_id, "User")
    ).exists():
        return False
    _owner_cache[key] = True
    return True


# -- snapshots -----------------------------------------------------------------------------------------
MAX_SNAPSHOT_DESCRIPTION = 1000


async def list_snapshots(ctx: RequestContext, *, sandbox_id: object) -> list[SnapshotInfo]:
    _, sandbox = await _open(ctx, sandbox_id)
    return await sandbox.list_snapshots()


async def create_snapshot(ctx: RequestContext, *, sandbox_id: object, description: object = None) -> SnapshotInfo:
    text = clean_text(description, "description", max_length=MAX_SNAPSHOT_DESCRIPTION, required=False)
    _, sandbox = await _open(ctx, sandbox_id, write=True)
    return await sandbox.create_snapshot(_new_snapshot_id(), text)


def _new_snapshot_id() -> str:
    return f"snap-{datetime.now(UTC):%Y%m%d%H%M%S}-{uuid.uuid4().hex[:8]}"


async def get_snapshot(ctx: RequestContext, *, sandbox_id: object, snapshot_id: object) -> SnapshotInfo:
    for info in await list_snapshots(ctx, sandbox_id=sandbox_id):
        if info.id == snapshot_id:
            return info
    raise NotFound("Snapshot not found")


@dataclass(frozen=True)
class Restored:
    snapshot: SnapshotInfo
    checkpoint: SnapshotInfo | None  # the state before the restore, kept as a snapshot of its own


async def restore_snapshot(
    ctx: RequestContext, *, sandbox_id: object, snapshot_id: object, checkpoint: bool = True
) -> Restored:
    """Replace the workspace with the snapshot's files; the current files are snapshotted first
    ("restore checkpoint") unless asked not to or the snapshot limit is reached."""
    _, sandbox = await _open(ctx, sandbox_id, write=True)
    sid = _snapshot_id(snapshot_id)
    await _require_snapshot(sandbox, sid)
    saved = None
    if checkpoint:
        try:
            saved = await sandbox.create_snapshot(_new_snapshot_id(), "restore checkpoint")
        except SandboxLimitError:
            saved = None
    return Restored(await sandbox.restore_snapshot(sid), saved)


async def diff_snapshot(ctx: RequestContext, *, sandbox_id: object, snapshot_id: object) -> str:
    """Unified diff from the snapshot (a/) to the current files (b/)."""
    _, sandbox = await _open(ctx, sandbox_id)
    return await sandbox.diff_snapshot(_snapshot_id(snapshot_id))


async def delete_snapshot(ctx: RequestContext, *, sandbox_id: object, snapshot_id: object) -> str:
    _, sandbox = await _open(ctx, sandbox_id, write=True)
    sid = _snapshot_id(snapshot_id)
    await sandbox.delete_snapshot(sid)
    return sid


def _snapshot_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise NotFound("Snapshot not found")
    return value


async def _require_snapshot(sandbox: Sandbox, sid: str) -> None:
    if not any(s.id == sid for s in await sandbox.list_snapshots()):
        raise NotFound("Snapshot not found")
