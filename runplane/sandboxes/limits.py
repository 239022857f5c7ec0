"""Resource limits applied to every sandbox command, file operation and session."""

from __future__ import annotations

from dataclasses import dataclass

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@dataclass(frozen=True)
class SandboxLimits:
    """Bounds for one sandbox. Frozen: a sandbox's limits never change under a running command.

    `max_processes` is enforced per sandbox (RLIMIT_NPROC on a uid of its own when the control
    plane runs as root), so it bounds all commands and sessions of that sandbox together.
    `memory_bytes` is RLIMIT_AS (address space per process): runtimes that reserve large virtual
    ranges (JVM, WebAssembly) need it raised. `sandbox_memory_bytes` is memory actually used by the
    whole sandbox (cgroup, where runplane can make them), all its processes together.
    """

    wall_time_seconds: float = 60
    cpu_seconds: int = 60
    memory_bytes: int = 1 * GIB
    sandbox_memory_bytes: int = 4 * GIB
    max_processes: int = 256
    max_output_bytes: int = 1 * MIB
    max_file_bytes: int = 100 * MIB
    max_upload_bytes: int = 50 * MIB
    network: bool = True
    # Without a working bubblewrap, commands are refused (503) unless this explicit opt-out is set.
    allow_unisolated: bool = False
    require_isolation: bool = False  # refuse also when another layer (the egress guard) is missing
    # Sessions (dev servers) live longer than one command, so they get their own CPU budget;
    # their wall time is unbounded by default (the idle reaper stops them).
    session_cpu_seconds: int = 3600
    max_sessions: int = 8
    # Size of the private /tmp (tmpfs, memory-backed) inside bubblewrap.
    tmp_bytes: int = 256 * MIB
    # CPUs the whole sandbox may use at once (cgroup CPU quota), and its workspace's disk quota (measured).
    cpus: float = 1.0
    disk_bytes: int = 5 * GIB  # node_modules and build caches of a web app fit

    def __post_init__(self) -> None:
        for name in (
            "wall_time_seconds",
            "cpu_seconds",
            "memory_bytes",
            "sandbox_memory_bytes",
            "max_processes",
            "max_output_bytes",
            "max_file_bytes",
            "max_upload_bytes",
            "session_cpu_seconds",
            "max_sessions",
            "tmp_bytes",
            "cpus",
            "disk_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"SandboxLimits.{name} must be positive")
