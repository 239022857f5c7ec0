"""LocalSandboxBackend: one directory per sandbox on this machine.

Layout under base_dir:
    <id>/workspace/    the files commands see (owned by the sandbox uid), /workspace in bwrap
    <id>/tmp/          TMPDIR when running without bubblewrap (bwrap gets a private tmpfs)
    <id>/.snapshots/   snapshot archives, 0700, out of the sandbox's reach
    <id>/sandbox.json  id, uid, created_at
    .uids/<uid>        claim files: which uid belongs to which sandbox (O_EXCL, so several
                       control-plane processes sharing base_dir never hand out one uid twice)

When the control plane runs as root, each sandbox gets a uid of its own from `uid_range`:
RLIMIT_NPROC is per real uid and not enforced for root, so this is what contains fork bombs;
it also lets destroy() kill every leftover process of the sandbox with one kill(-1).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import zlib
from pathlib import Path

from runplane.clock import iso_now
from runplane.sandboxes import cgroups
from runplane.sandboxes.cgroups import SandboxCgroups
from runplane.sandboxes.errors import (
    SandboxConflictError,
    SandboxInputError,
    SandboxIsolationError,
    SandboxLimitError,
    SandboxNotFoundError,
)
from runplane.sandboxes.isolation import (
    DEFAULT_PATH,
    UNISOLATED_HELP,
    IsolationInfo,
    detect_isolation,
    drop_to,
    warn_unisolated_once,
)
from runplane.sandboxes.limits import SandboxLimits
from runplane.sandboxes.networks import SandboxNetwork
from runplane.sandboxes.ports import find_free_port
from runplane.sandboxes.sandbox import SandboxHandle

__all__ = ["LocalSandboxBackend", "SandboxHandle"]

log = logging.getLogger(__name__)

SANDBOX_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
DEFAULT_UID_RANGE = range(200_000, 265_536)


class UidPool:
    """Claims uids with O_EXCL files; starts probing at a hash of the id to avoid crowding."""

    def __init__(self, directory: Path, uids: range) -> None:
        self.dir, self.uids = directory, uids
        directory.mkdir(mode=0o700, exist_ok=True)

    def claim(self, sandbox_id: str) -> int:
        start = zlib.crc32(sandbox_id.encode())
        for i in range(len(self.uids)):
            uid = self.uids[(start + i) % len(self.uids)]
            try:
                fd = os.open(self.dir / str(uid), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            except FileExistsError:
                continue
            with open(fd, "w") as claim:
                claim.write(sandbox_id)
            return uid
        raise SandboxLimitError("no free sandbox uid left")

    def release(self, uid: int) -> None:
        (self.dir / str(uid)).unlink(missing_ok=True)


class LocalSandboxBackend:
    def __init__(
        self,
        base_dir: Path,
        limits: SandboxLimits | None = None,
        *,
        uid_range: range = DEFAULT_UID_RANGE,
        use_bwrap: bool = True,
        bwrap: str | None = None,
    ) -> None:
        self.base_dir = Path(os.path.realpath(base_dir))
        self.limits = limits or SandboxLimits()
        self.base_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        self._as_root = os.geteuid() == 0
        self._uids = UidPool(self.base_dir / ".uids", uid_range) if self._as_root else None
        self._probe_owner = (uid_range[0], uid_range[0]) if self._as_root else None
        if self._as_root:
            _check_traversable(self.base_dir)
        self._use_bwrap = use_bwrap
        self._bwrap = bwrap  # this bubblewrap only; None: the system's on PATH, else the bundled one
        self._sandboxes: dict[str, SandboxHandle] = {}
        self._cgroup_scope = cgroups.scope_name(self.base_dir)
        self._ports: set[int] = set()

    # -- isolation -----------------------------------------------------------------------
    async def isolation(self) -> IsolationInfo:
        """Whether commands run under bubblewrap here (probed once per process and uid)."""
        if not self._use_bwrap:
            return IsolationInfo(None, "bubblewrap disabled by configuration")
        return await detect_isolation(self.base_dir, self._probe_owner, self._bwrap)

    def allow_unisolated(self, limits: SandboxLimits, info: IsolationInfo) -> None:
        """Called before running without bubblewrap: refuse when that would break a promise."""
        if limits.require_isolation:
            raise SandboxIsolationError(f"sandbox isolation is required but {info.reason}")
        if not limits.allow_unisolated:
            raise SandboxIsolationError(f"sandbox commands cannot run isolated here ({info.reason}); {UNISOLATED_HELP}")
        if not limits.network:
            raise SandboxIsolationError(f"network=False can only be enforced with bubblewrap, and {info.reason}")
        warn_unisolated_once(info)

    async def network_namespace(self, sandbox_id: str) -> SandboxNetwork | None:
        """The sandbox's own network namespace, or None: commands share the host's network. Overridden
        where namespaces are made (sandboxes/egress.py)."""
        return None

    def cgroups(self, sandbox_id: str) -> SandboxCgroups | None:
        """The sandbox's cgroups (whole-sandbox limits, whole-command kills), or None where runplane cannot
        make cgroups (not root, none writable): rlimits alone then."""
        support = cgroups.support()
        if not (support.limits or support.kills):
            return None
        return SandboxCgroups(support, self._cgroup_scope, sandbox_id, self.limits)

    # -- lifecycle -----------------------------------------------------------------------
    def _dir(self, sandbox_id: str) -> Path:
        if not isinstance(sandbox_id, str) or not SANDBOX_ID.match(sandbox_id):
            raise SandboxInputError("sandbox id must match ^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
        return self.base_dir / sandbox_id

    def exists(self, sandbox_id: str) -> bool:
        return (self._dir(sandbox_id) / "sandbox.json").is_file()

    async def create(self, sandbox_id: str) -> SandboxHandle:
        directory = self._dir(sandbox_id)
        if self.exists(sandbox_id) or directory.exists():
            raise SandboxConflictError(f"sandbox {sandbox_id} already exists")
        uid = self._uids.claim(sandbox_id) if self._uids else None
        owner = (uid, uid) if uid is not None else None
        try:
            if owner is not None:
                await self.kill_uid(owner)  # leftovers of a sandbox that held this uid before
            await asyncio.to_thread(_make_layout, directory, sandbox_id, owner)
        except FileExistsError as exc:  # a concurrent create won
            if uid is not None and self._uids:
                self._uids.release(uid)
            raise SandboxConflictError(f"sandbox {sandbox_id} already exists") from exc
        except BaseException:
            if uid is not None and self._uids:
                self._uids.release(uid)
            raise
        return self._handle(sandbox_id, owner)

    async def ensure(self, sandbox_id: str) -> SandboxHandle:
        if self.exists(sandbox_id):
            return self.get(sandbox_id)
        try:
            return await self.create(sandbox_id)
        except SandboxConflictError:
            # A concurrent create is laying the sandbox out: it is complete once sandbox.json exists.
            for _ in range(200):
                if self.exists(sandbox_id):
                    return self.get(sandbox_id)
                await asyncio.sleep(0.05)
            raise

    def get(self, sandbox_id: str) -> SandboxHandle:
        if sandbox_id in self._sandboxes:
            return self._sandboxes[sandbox_id]
        if not self.exists(sandbox_id):
            raise SandboxNotFoundError(f"sandbox {sandbox_id} not found")
        meta = json.loads((self._dir(sandbox_id) / "sandbox.json").read_text())
        uid = meta.get("uid")
        return self._handle(sandbox_id, (uid, uid) if uid is not None else None)

    def _handle(self, sandbox_id: str, owner: tuple[int, int] | None) -> SandboxHandle:
        sandbox = SandboxHandle(self, sandbox_id, self._dir(sandbox_id), owner)
        return self._sandboxes.setdefault(sandbox_id, sandbox)

    async def destroy(self, sandbox_id: str) -> None:
        """Stop everything the sandbox runs, then remove all its files and free its uid."""
        sandbox = self.get(sandbox_id)
        await sandbox.stop_all()
        sandbox.release_ports()
        await asyncio.to_thread(sandbox.remove_cgroups)
        directory = self._dir(sandbox_id)
        await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
        if directory.exists():  # nothing runs any more, so this should not happen
            log.warning("sandbox %s: some files could not be removed from %s", sandbox_id, directory)
        if sandbox.owner is not None and self._uids:
            self._uids.release(sandbox.owner[0])
        self._sandboxes.pop(sandbox_id, None)

    async def close(self) -> None:
        """Stop the processes of every sandbox this backend touched (application shutdown)."""
        # Their cgroups stay: another process sharing base_dir (API and workers) may be about to run a command
        # in them. Empty cgroups cost next to nothing; deleting the sandbox removes its own.
        await asyncio.gather(*(s.stop_all() for s in list(self._sandboxes.values())))

    def idle_sandboxes(self, idle_seconds: float) -> list[str]:
        """Sandboxes (loaded in this process) with no operation for `idle_seconds`."""
        return [s.id for s in self._sandboxes.values() if s.idle_seconds() >= idle_seconds]

    # -- processes and ports -------------------------------------------------------------
    async def kill_uid(self, owner: tuple[int, int]) -> None:
        """SIGKILL every process of a sandbox uid: kill(-1) run as that uid reaches exactly
        its processes (and never the caller). Repeated in case one was forking meanwhile."""
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            "for i in 1 2 3; do kill -9 -1 2>/dev/null || exit 0; done",
            preexec_fn=functools.partial(drop_to, owner),
            env={"PATH": DEFAULT_PATH},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd="/",
        )
        await proc.wait()

    def allocate_port(self) -> int:
        for _ in range(100):
            port = find_free_port()
            if port not in self._ports:
                self._ports.add(port)
                return port
        raise SandboxLimitError("no free port")

    def release_port(self, port: int) -> None:
        self._ports.discard(port)


def _make_layout(directory: Path, sandbox_id: str, owner: tuple[int, int] | None) -> None:
    directory.mkdir(mode=0o711)  # sandbox uid may traverse (to reach workspace/), not list
    (directory / ".snapshots").mkdir(mode=0o700)
    for name in ("workspace", "tmp"):
        (directory / name).mkdir(mode=0o700 if owner else 0o755)
        if owner is not None:
            os.chown(directory / name, *owner)
    meta = {"id": sandbox_id, "uid": owner[0] if owner else None, "created_at": iso_now()}
    # Last, and atomically (rename): a reader that sees sandbox.json sees all of it and a complete layout.
    partial = directory / ".sandbox.json.tmp"
    partial.write_text(json.dumps(meta))
    os.replace(partial, directory / "sandbox.json")


def _check_traversable(path: Path) -> None:
    """Sandbox uids (and bwrap running as them) must reach base_dir: every ancestor needs o+x."""
    if (blocked := _first_untraversable(path)) is not None:
        raise SandboxIsolationError(
            f"{blocked} is not searchable by other users (mode o+x); sandbox uids could not reach their "
            f"workspace under {path}. Set RUNPLANE_SANDBOX_DIR to a directory outside it."
        )


def _first_untraversable(path: Path) -> Path | None:
    for directory in (path, *path.parents):
        if directory.exists() and not os.stat(directory).st_mode & stat.S_IXOTH:
            return directory
    return None


# Where workspaces go when the data dir is out of sandbox uids' reach (a clone in /root, 0700).
FALLBACK_WORKSPACES = Path("/var/lib/runplane")


def workspaces_base(data_dir: Path, configured: Path | None) -> Path:
    """The sandboxes' base directory: the configured one as is (checked when used), else
    <data_dir>/workspaces when sandbox uids can reach it, else (as root) a directory of this data dir's
    own under /var/lib/runplane, created 0711 (traversable, not listable)."""
    if configured is not None:
        return configured
    default = data_dir / "workspaces"
    if os.geteuid() != 0 or _first_untraversable(Path(os.path.realpath(default))) is None:
        return default
    digest = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]
    base = FALLBACK_WORKSPACES / digest
    for directory in (FALLBACK_WORKSPACES, base):
        directory.mkdir(mode=0o711, exist_ok=True)
        os.chmod(directory, 0o711)  # an existing one made with another umask
    (base / "data_dir").write_text(os.path.realpath(data_dir))  # whose workspaces these are, for operators
    log.info(
        "%s is not reachable by sandbox uids (an ancestor lacks o+x): workspaces go to %s", default, base / "workspaces"
    )
    return base / "workspaces"
