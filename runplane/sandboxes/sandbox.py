"""The handle for one sandbox: files, commands, sessions, ports, snapshots, idle tracking.

Blocking file work runs in worker threads (asyncio.to_thread); processes are asyncio
subprocesses. Every public operation refreshes `last_active_at` for the idle reaper.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from runplane.sandboxes import files, quota
from runplane.sandboxes.archive import (
    ARCHIVE_FORMATS,
    COPY_CHUNK,
    ArchiveFormat,
    temp_file,
    write_archive,
)
from runplane.sandboxes.errors import (
    SandboxConflictError,
    SandboxInputError,
    SandboxLimitError,
    SandboxNotFoundError,
)
from runplane.sandboxes.files import FileInfo, FileTree, Workspace
from runplane.sandboxes.isolation import (
    WORKSPACE_MOUNT,
    LaunchSpec,
    build_env,
    bwrap_argv,
    rlimits_for,
    shell_argv,
)
from runplane.sandboxes.limits import SandboxLimits
from runplane.sandboxes.networks import UPSTREAM_SUFFIX, dial, network_env
from runplane.sandboxes.paths import open_dir_beneath
from runplane.sandboxes.ports import Readiness, port_accepts, wait_for_ready, wait_until_listening
from runplane.sandboxes.process import CommandResult, Watch, run_bounded, spawn
from runplane.sandboxes.sessions import (
    OutputBuffer,
    OutputChunk,
    Session,
    SessionInfo,
    validate_session_name,
)
from runplane.sandboxes.snapshots import SnapshotInfo, SnapshotStore

if TYPE_CHECKING:
    from runplane.sandboxes.local import LocalSandboxBackend


class SandboxHandle:
    """A sandbox at run time: its workspace, sessions, ports and snapshots on this host (its row is models.Sandbox)."""

    def __init__(
        self, backend: LocalSandboxBackend, sandbox_id: str, directory: Path, owner: tuple[int, int] | None
    ) -> None:
        self.id = sandbox_id
        self.directory = directory  # base_dir/<id>: workspace/, tmp/, .snapshots/
        self.workspace = Path(os.path.realpath(directory / "workspace"))
        self.owner = owner  # (uid, gid) of the sandbox's own user, when we run as root
        self.limits: SandboxLimits = backend.limits
        self._backend = backend
        self._ws = Workspace(self.workspace, owner)
        self._sessions: dict[str, Session] = {}
        self._starting: set[str] = set()
        self._ports: set[int] = set()
        self._snapshots = SnapshotStore(directory / ".snapshots", self._ws, self.limits.max_output_bytes)
        self._last_active = time.time()
        self._cgroups = backend.cgroups(sandbox_id)  # None where runplane cannot make cgroups

    # -- idle tracking -------------------------------------------------------------------
    def touch(self) -> None:
        """Mark activity; callers outside this class (a preview proxy) may call it too."""
        self._last_active = time.time()

    @property
    def last_active_at(self) -> datetime:
        return datetime.fromtimestamp(self._last_active, UTC)

    def idle_seconds(self) -> float:
        return max(0.0, time.time() - self._last_active)

    @property
    def has_running_sessions(self) -> bool:
        return any(s.running for s in self._sessions.values())

    # -- files ---------------------------------------------------------------------------
    async def write_file(self, path: str, data: bytes) -> FileInfo:
        self.touch()
        await self.check_disk_quota(len(data))
        return await asyncio.to_thread(files.write_file, self._ws, path, data, self.limits.max_upload_bytes)

    async def check_disk_quota(self, incoming: int) -> None:
        """Refuse a write that would take the workspace past its disk quota (measured, not trusted)."""
        used = await quota.measure(self.workspace)
        if used + incoming > self.limits.disk_bytes:
            raise SandboxLimitError(
                f"workspace disk quota exceeded: {used} bytes used, {incoming} more would pass "
                f"the quota of {self.limits.disk_bytes} bytes"
            )

    async def read_file(self, path: str) -> bytes:
        self.touch()
        return await asyncio.to_thread(files.read_file, self._ws, path, self.limits.max_file_bytes)

    async def list_files(self, path: str = ".") -> list[FileInfo]:
        self.touch()
        return await asyncio.to_thread(files.list_files, self._ws, path)

    async def tree(self, path: str = ".", max_entries: int = 10_000) -> FileTree:
        self.touch()
        return await asyncio.to_thread(files.tree, self._ws, path, max_entries)

    async def delete(self, paths: list[str]) -> list[str]:
        self.touch()
        return await asyncio.to_thread(files.delete, self._ws, list(paths))

    async def archive(self, fmt: ArchiveFormat = "tar.gz") -> AsyncGenerator[bytes, None]:
        """Stream the workspace as tar.gz or zip. Built in an unnamed temp file beside the
        workspace (not in memory), then read out in chunks."""
        if fmt not in ARCHIVE_FORMATS:
            raise SandboxInputError(f"archive format must be one of {ARCHIVE_FORMATS}")
        self.touch()
        out = await asyncio.to_thread(temp_file, self.directory)
        try:
            await asyncio.to_thread(write_archive, self.workspace, self.owner, fmt, out)
            out.seek(0)
            while chunk := await asyncio.to_thread(out.read, COPY_CHUNK):
                yield chunk
        finally:
            out.close()

    # -- commands ------------------------------------------------------------------------
    async def execute(
        self, command: str, cwd: str = ".", timeout: float | None = None, env: Mapping[str, str] | None = None
    ) -> CommandResult:
        """Run `bash -lc command`; bounded by wall time (whole group killed), output cap
        (command killed when exceeded, truncated=True), rlimits and isolation."""
        self.touch()
        wall = self._wall_time(timeout)
        spec = await self._launch_spec(command, cwd, env, None, self.limits.cpu_seconds)
        try:
            return await run_bounded(
                spec, wall_time=wall, max_output=self.limits.max_output_bytes, watch=self._quota_watch(spec)
            )
        finally:
            self.touch()

    def _quota_watch(self, spec: LaunchSpec) -> Watch:
        return quota.watch(self.workspace, self.limits.disk_bytes, spec.disk_used)

    def _wall_time(self, timeout: float | None) -> float:
        if timeout is None:
            return self.limits.wall_time_seconds
        if timeout <= 0:
            raise SandboxInputError("timeout must be positive")
        return min(timeout, self.limits.wall_time_seconds)  # the limit is a ceiling

    async def _launch_spec(
        self, command: str, cwd: str, env: Mapping[str, str] | None, port: int | None, cpu_seconds: int
    ) -> LaunchSpec:
        argv = shell_argv(command)
        cwd_parts = await asyncio.to_thread(self._existing_dir, cwd)
        # No one file may pass the disk quota: what is left of it bounds the file size (0 when over it).
        used = await quota.measure(self.workspace)
        left = max(0, self.limits.disk_bytes - used)
        rlimits = rlimits_for(self.limits, cpu_seconds=cpu_seconds, file_bytes=min(self.limits.max_file_bytes, left))
        isolation = await self._backend.isolation()
        if isolation.bwrap is None:
            self._backend.allow_unisolated(self.limits, isolation)
        network = await self._backend.network_namespace(self.id)  # None: the host's network
        netns = str(network.path) if network else None
        if isolation.bwrap is not None:
            argv = (
                bwrap_argv(isolation.bwrap, self.workspace, cwd_parts, self.limits, in_netns=netns is not None) + argv
            )
            environment = build_env(WORKSPACE_MOUNT, env, port=port)
            directory = str(self.workspace)
        else:
            environment = build_env(str(self.workspace), env, port=port, tmpdir=str(self.directory / "tmp"))
            # Started in the workspace root (a path of ours) and moved into cwd by the shell, as the sandbox's
            # uid: subprocess's own chdir runs before the uid drop, as root, and would follow a link the
            # sandbox swapped in since _existing_dir checked it (into a directory it could never enter itself).
            directory = str(self.workspace)
            if cwd_parts:
                argv = shell_argv(f"cd -- {shlex.quote('/'.join(cwd_parts))} || exit 1\n{command}")
        # Last: nothing may fail between making the command's cgroup and spawn (which removes it on failure).
        group = await asyncio.to_thread(self._cgroups.command_group) if self._cgroups is not None else None
        return LaunchSpec(
            argv,
            network_env(network, environment),
            directory,
            rlimits,
            self.owner,
            isolated=isolation.bwrap is not None,
            netns=netns,
            group=group,
            disk_used=used,
        )

    def _existing_dir(self, cwd: str) -> tuple[str, ...]:
        parts = self._ws.parts(cwd)
        os.close(open_dir_beneath(self.workspace, parts))  # must exist and be a directory
        return parts

    # -- sessions ------------------------------------------------------------------------
    async def start_session(
        self,
        name: str,
        command: str,
        cwd: str = ".",
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        timeout: float | None = None,
    ) -> SessionInfo:
        """Start a background command. No wall time unless `timeout` is given (dev servers
        run until stopped); CPU is bounded by limits.session_cpu_seconds."""
        validate_session_name(name)
        self.touch()
        self._reserve_session_name(name)
        try:
            spec = await self._launch_spec(command, cwd, env, port, self.limits.session_cpu_seconds)
            buffer = OutputBuffer(self.limits.max_output_bytes)
            proc = await spawn(spec, buffer.append)
            session = Session(name, command, proc, buffer, port, timeout, self._quota_watch(spec))
            self._sessions[name] = session
            if port is not None and port in self._ports:  # allocated here: free it at the end
                session.task.add_done_callback(lambda _: self._release_port(port))
            return session.status()
        finally:
            self._starting.discard(name)

    def _reserve_session_name(self, name: str) -> None:
        current = self._sessions.get(name)
        if name in self._starting or (current is not None and current.running):
            raise SandboxConflictError(f"session {name} is already running")
        running = sum(s.running for s in self._sessions.values()) + len(self._starting)
        if running >= self.limits.max_sessions:
            raise SandboxLimitError(f"at most {self.limits.max_sessions} sessions may run at once")
        self._starting.add(name)

    def _session(self, name: str) -> Session:
        session = self._sessions.get(name)
        if session is None:
            raise SandboxNotFoundError(f"session {name} not found")
        return session

    def session_status(self, name: str) -> SessionInfo:
        self.touch()
        return self._session(name).status()

    def list_sessions(self) -> list[SessionInfo]:
        return [s.status() for s in self._sessions.values()]

    def session_output(self, name: str, after_offset: int = 0) -> OutputChunk:
        """Output kept in the ring buffer from after_offset on (or its oldest byte)."""
        self.touch()
        return self._session(name).buffer.read(after_offset)

    async def stream_session(self, name: str, from_offset: int = 0) -> AsyncIterator[OutputChunk]:
        """Live output chunks until the session ends; resume with the last chunk's next_offset."""
        buffer = self._session(name).buffer
        async with contextlib.aclosing(buffer.follow(from_offset)) as chunks:
            async for chunk in chunks:
                self.touch()
                yield chunk

    async def stop_session(self, name: str, grace: float = 2.0) -> SessionInfo:
        session = self._session(name)
        self.touch()
        await session.stop(grace)
        return session.status()

    async def stop_all(self, grace: float = 2.0) -> None:
        """Stop every session, then kill whatever else still runs as this sandbox's uid
        (commands in flight, processes that left their group)."""
        await asyncio.gather(*(s.stop(grace) for s in self._sessions.values()))
        if self.owner is not None:
            await self._backend.kill_uid(self.owner)

    def remove_cgroups(self, *, wait: bool = True) -> None:
        if self._cgroups is not None:
            self._cgroups.remove(wait=wait)

    # -- ports ---------------------------------------------------------------------------
    def allocate_port(self) -> int:
        """A free localhost port for a dev server (pass it as start_session(port=...))."""
        port = self._backend.allocate_port()
        self._ports.add(port)
        return port

    def _release_port(self, port: int) -> None:
        self._ports.discard(port)
        self._backend.release_port(port)

    def release_ports(self) -> None:
        for port in list(self._ports):
            self._release_port(port)

    async def connect(self, port: int) -> socket.socket:
        """A TCP connection to this sandbox's 127.0.0.1:port, inside its network namespace when it has one
        (previews, readiness): no other sandbox can answer for it there. OSError when nothing listens."""
        return await dial(await self._backend.network_namespace(self.id), port)

    async def has_own_network(self) -> bool:
        """True when the sandbox runs in a network namespace of its own (every port there is its own)."""
        return await self._backend.network_namespace(self.id) is not None

    async def port_accepts(self, port: int) -> bool:
        return await port_accepts(port, self.connect)

    @property
    def upstream_host(self) -> str:
        """How the preview proxy's HTTP client names this sandbox (it then connects via `connect`)."""
        return self.id + UPSTREAM_SUFFIX

    async def wait_until_listening(self, port: int, timeout: float = 30.0) -> bool:
        return await wait_until_listening(port, timeout, self.connect)

    async def wait_for_dev_server(self, name: str, port: int | None = None, timeout: float = 60.0) -> Readiness:
        """Ready when the session prints a readiness line ("Local:", "listening on", ...) or
        its port accepts connections; not ready if it exits first or time runs out."""
        session = self._session(name)
        self.touch()
        return await wait_for_ready(session.buffer.follow(0), port or session.port, timeout, self.connect)

    # -- snapshots -----------------------------------------------------------------------
    async def create_snapshot(self, snapshot_id: str, description: str = "") -> SnapshotInfo:
        self.touch()
        return await asyncio.to_thread(self._snapshots.create, snapshot_id, description)

    async def list_snapshots(self) -> list[SnapshotInfo]:
        self.touch()
        return await asyncio.to_thread(self._snapshots.list)

    async def restore_snapshot(self, snapshot_id: str) -> SnapshotInfo:
        """Running sessions keep running and see the restored files."""
        self.touch()
        return await asyncio.to_thread(self._snapshots.restore, snapshot_id)

    async def diff_snapshot(self, snapshot_id: str) -> str:
        self.touch()
        return await asyncio.to_thread(self._snapshots.diff, snapshot_id)

    async def delete_snapshot(self, snapshot_id: str) -> None:
        self.touch()
        await asyncio.to_thread(self._snapshots.delete, snapshot_id)
