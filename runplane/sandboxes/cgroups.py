"""Whole-sandbox limits (memory, processes, CPU) and whole-command kills, through cgroups.

rlimits bound one process; a sandbox's commands and sessions together are bounded here. Only root can
make cgroups. What this host offers decides which are used, and start-up logs it:
- cgroup v2 (unified hierarchy): a cgroup per command (`cgroup.kill` ends every process in it, forks in
  flight included); limits there too when the memory, pids and cpu controllers can be enabled below
  runplane's own cgroup (a delegated subtree, or runplane at the root).
- cgroup v1 (one hierarchy per controller, as in many containers): limits in the memory, pids and cpu
  hierarchies; without v2, the per-command cgroup lives in the pids hierarchy and is emptied by SIGKILL
  rounds (its pids.max bounds how many a fork bomb can add meanwhile).

Layout, below runplane's own cgroup in each hierarchy:  runplane-<digest of base_dir>/<sandbox id>/c-<n>/
Processes join in the forked child before exec (prepare_child): a write of "0" to each cgroup.procs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from runplane.sandboxes.limits import SandboxLimits

log = logging.getLogger("runplane.sandboxes.cgroups")

V1_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000
_counter = itertools.count()


@dataclass(frozen=True)
class CgroupSupport:
    v1: dict[str, Path] = field(default_factory=dict)  # controller -> our own cgroup's dir in its hierarchy
    v2: Path | None = None  # our own cgroup's dir in the unified hierarchy
    v2_limits: bool = False  # memory, pids and cpu can be limited in v2 children
    notes: tuple[str, ...] = ()  # why a limit or the kill group is missing

    @property
    def limits(self) -> tuple[str, ...]:
        if self.v2_limits:
            return V1_CONTROLLERS
        return tuple(c for c in V1_CONTROLLERS if c in self.v1)

    @property
    def kills(self) -> bool:
        return self.v2 is not None or "pids" in self.v1


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root, fstype, super options) of every cgroup mount."""
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if tail and tail[0] in ("cgroup", "cgroup2"):
                found.append((fields[4], fields[3], tail[0], set(tail[2].split(",")) if len(tail) > 2 else set()))
    return found


def _own_paths() -> dict[str, str]:
    """controller (or "" for v2) -> our cgroup's path, from /proc/self/cgroup."""
    paths = {}
    with open("/proc/self/cgroup") as cgroup:
        for line in cgroup:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _join(mount: str, root: str, path: str) -> Path:
    relative = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
    return Path(os.path.normpath(os.path.join(mount, relative)))


def detect() -> CgroupSupport:
    if os.geteuid() != 0:
        return CgroupSupport(notes=("runplane does not run as root, so it cannot make cgroups",))
    try:
        mounts, own = _mounts(), _own_paths()
    except OSError as exc:
        return CgroupSupport(notes=(f"cgroups unreadable: {exc}",))
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for mount, root, fstype, options in mounts:
        if fstype == "cgroup2" and "" in own:
            v2 = _join(mount, root, own[""])
        for controller in V1_CONTROLLERS:
            if fstype == "cgroup" and controller in options and controller in own:
                v1[controller] = _join(mount, root, own[controller])
    v1 = {c: p for c, p in v1.items() if os.access(p, os.W_OK)}
    v2 = v2 if v2 is not None and os.access(v2, os.W_OK) else None
    notes = []
    v2_limits = False
    if v2 is not None:
        # Limits in v2 need the controllers enabled for our children: already (a delegated subtree), or enabled
        # by us where that is allowed (at the root; elsewhere our own processes would be "internal").
        wanted = set(V1_CONTROLLERS)
        delegated = set((v2 / "cgroup.subtree_control").read_text().split())
        available = set((v2 / "cgroup.controllers").read_text().split())
        v2_limits = wanted <= delegated or (own[""] == "/" and wanted <= available)
        if not v2_limits:
            notes.append(f"cgroup v2 offers no {'/'.join(sorted(wanted - available))} controller to runplane here")
    else:
        notes.append("no writable cgroup v2 hierarchy")
    missing = [c for c in V1_CONTROLLERS if c not in v1]
    if missing and not v2_limits:
        notes.append(f"no writable cgroup v1 {'/'.join(missing)} hierarchy")
    return CgroupSupport(v1, v2, v2_limits, tuple(notes))


def _write(path: Path, value: str) -> None:
    path.write_text(value)


class SandboxCgroups:
    """The cgroups of one sandbox: limits on its directory, a child per command."""

    def __init__(self, support: CgroupSupport, scope: str, sandbox_id: str, limits: SandboxLimits) -> None:
        self.support = support
        self.v2_dir = support.v2 / scope / sandbox_id if support.v2 else None
        self.v1_dirs = {c: p / scope / sandbox_id for c, p in support.v1.items()}
        self.limits = limits
        self._made = False

    def _ensure(self) -> None:
        if self._made:
            return
        if self.v2_dir is not None:
            self.v2_dir.mkdir(parents=True, exist_ok=True)
            if self.support.v2_limits:
                self._limit_v2(self.v2_dir)
        if not self.support.v2_limits:
            for controller, directory in self.v1_dirs.items():
                directory.mkdir(parents=True, exist_ok=True)
                self._limit_v1(controller, directory)
        self._made = True

    def _limit_v2(self, directory: Path) -> None:
        # Enabled down to the scope, so the sandbox's directory has the limit files; its processes live in
        # its c-* children (a cgroup with controllers enabled for children may hold no processes itself).
        for parent in (directory.parent.parent, directory.parent):
            if not set(V1_CONTROLLERS) <= set((parent / "cgroup.subtree_control").read_text().split()):
                _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in V1_CONTROLLERS))
        _write(directory / "memory.max", str(self.limits.sandbox_memory_bytes))
        with contextlib.suppress(OSError):
            _write(directory / "memory.swap.max", "0")
        _write(directory / "pids.max", str(self.limits.max_processes))
        _write(directory / "cpu.max", f"{int(self.limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")

    def _limit_v1(self, controller: str, directory: Path) -> None:
        if controller == "memory":
            _write(directory / "memory.limit_in_bytes", str(self.limits.sandbox_memory_bytes))
            with contextlib.suppress(OSError):  # swap accounting may be off: then memory alone
                _write(directory / "memory.memsw.limit_in_bytes", str(self.limits.sandbox_memory_bytes))
        elif controller == "pids":
            _write(directory / "pids.max", str(self.limits.max_processes))
        elif controller == "cpu":
            _write(directory / "cpu.cfs_period_us", str(CPU_PERIOD_US))
            _write(directory / "cpu.cfs_quota_us", str(int(self.limits.cpus * CPU_PERIOD_US)))

    def command_group(self) -> CommandGroup:
        """A fresh cgroup for one command or session: the procs files its first process joins."""
        try:
            return self._command_group()
        except FileNotFoundError:  # another process sharing base_dir removed the sandbox's cgroups (its shutdown)
            self._made = False
            return self._command_group()

    def _command_group(self) -> CommandGroup:
        self._ensure()
        name = f"c-{os.getpid()}-{next(_counter)}"
        procs: list[str] = []
        kill_dir: Path | None = None
        if self.v2_dir is not None:
            kill_dir = self.v2_dir / name
            kill_dir.mkdir()
            procs.append(str(kill_dir / "cgroup.procs"))
        if not self.support.v2_limits:
            for controller, directory in self.v1_dirs.items():
                if controller == "pids" and kill_dir is None:
                    kill_dir = directory / name
                    kill_dir.mkdir()
                    procs.append(str(kill_dir / "cgroup.procs"))
                else:
                    procs.append(str(directory / "cgroup.procs"))
        return CommandGroup(tuple(procs), kill_dir)

    def remove(self, *, wait: bool = True) -> None:
        """Remove the sandbox's cgroups: after every process of it is gone (destroy, wait=True), or at
        shutdown, where only empty ones go (another process sharing base_dir may still run commands)."""
        for directory in [self.v2_dir, *self.v1_dirs.values()]:
            if directory is not None and directory.is_dir():
                for child in [*(c for c in directory.iterdir() if c.is_dir()), directory, directory.parent]:
                    if wait and child != directory.parent:
                        _rmdir(child)
                    else:
                        with contextlib.suppress(OSError):  # busy, or the scope of other sandboxes too
                            child.rmdir()
        self._made = False


@dataclass(frozen=True)
class CommandGroup:
    procs: tuple[str, ...]  # cgroup.procs files the command's first process writes "0" to
    kill_dir: Path | None  # the cgroup holding exactly this command's processes

    def kill(self) -> None:
        """SIGKILL every process of the command (escapees of its session and process group too), then
        remove its cgroup. Blocking but short: run it in a thread."""
        if self.kill_dir is None:
            return
        if (self.kill_dir / "cgroup.kill").exists():
            _write(self.kill_dir / "cgroup.kill", "1")
        deadline, pause = time.monotonic() + 5, 0.0005
        while time.monotonic() < deadline:
            pids = [int(p) for p in (self.kill_dir / "cgroup.procs").read_text().split()]
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(pause)  # dying takes a moment: short waits first, a command's latency depends on it
            pause = min(pause * 2, 0.02)
        _rmdir(self.kill_dir)


def _rmdir(directory: Path) -> None:
    pause = 0.0005
    for _ in range(60):  # a killed process leaves its cgroup a moment after dying
        try:
            directory.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(pause)
            pause = min(pause * 2, 0.02)
    log.warning("cgroup %s could not be removed (processes left in it)", directory)


def join(procs: tuple[str, ...]) -> None:
    """preexec_fn part (as root, before the uid drop): move this forked child into the command's cgroups.
    Raw syscalls only, as in the rest of the child's preparation."""
    for path in procs:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)


def scope_name(base_dir: Path) -> str:
    """One subtree per base_dir: several runplane processes (API, workers, test servers) on one host."""
    return "runplane-" + hashlib.sha256(str(base_dir).encode()).hexdigest()[:12]


def probe(found: CgroupSupport) -> CgroupSupport:
    """What actually works: make a sandbox cgroup with its limits, run /bin/true in a command cgroup, kill and
    remove it. A v2 hierarchy may refuse the controllers (a cgroup namespace whose "/" holds our processes):
    then v1 and the kill group only; if even that fails, no cgroups (a command must never fail for them)."""
    attempts, error = [found], "nothing to make"
    if found.v2_limits:
        attempts.append(CgroupSupport(found.v1, found.v2, False, (*found.notes, "cgroup v2 controllers refused")))
    for attempt in attempts:
        if not (attempt.limits or attempt.kills):
            break
        cgroups = SandboxCgroups(attempt, f"runplane-probe-{os.getpid()}", "probe", SandboxLimits())
        try:
            group = cgroups.command_group()
            subprocess.run(["/bin/true"], preexec_fn=functools.partial(join, group.procs), check=True, timeout=10)
            group.kill()
            return attempt
        except (OSError, subprocess.SubprocessError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with contextlib.suppress(OSError):
                cgroups.remove(wait=False)
    return CgroupSupport(notes=(*found.notes, f"making a cgroup failed ({error})"))


_support: CgroupSupport | None = None


def support() -> CgroupSupport:
    """Detected and probed once per process; logged once."""
    global _support
    if _support is None:
        try:
            _support = probe(detect())
        except (OSError, ValueError, KeyError) as exc:  # an unusual /proc or cgroup layout: without cgroups
            _support = CgroupSupport(notes=(f"cgroups not understood here: {type(exc).__name__}: {exc}",))
        if _support.limits or _support.kills:
            log.info(
                "sandbox cgroups: limits %s (%s), whole-command kill %s%s",
                ", ".join(_support.limits) or "none",
                "v2" if _support.v2_limits else "v1",
                "cgroup v2 cgroup.kill" if _support.v2 else ("cgroup v1 pids" if _support.kills else "none"),
                f"; {'; '.join(_support.notes)}" if _support.notes else "",
            )
        else:
            log.warning(
                "sandbox cgroups unavailable (%s): memory, processes and CPU are bounded per process (rlimits), "
                "not per sandbox",
                "; ".join(_support.notes),
            )
    return _support
