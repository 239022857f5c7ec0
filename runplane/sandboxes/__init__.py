"""Sandbox backends: where agent runs execute commands and keep files.

`LocalSandboxBackend` keeps one workspace directory per sandbox on this machine and runs
commands under bubblewrap when it works here (plain bounded subprocesses otherwise).
"""

from runplane.sandboxes.archive import ArchiveFormat
from runplane.sandboxes.errors import (
    SandboxConflictError,
    SandboxError,
    SandboxInputError,
    SandboxIsolationError,
    SandboxLimitError,
    SandboxNotFoundError,
    SandboxPathError,
)
from runplane.sandboxes.files import FileInfo, FileTree, TreeNode
from runplane.sandboxes.isolation import IsolationInfo
from runplane.sandboxes.limits import SandboxLimits
from runplane.sandboxes.local import LocalSandboxBackend
from runplane.sandboxes.paths import resolve_in_workspace
from runplane.sandboxes.ports import (
    Readiness,
    is_ready_line,
    wait_for_ready,
    wait_until_listening,
)
from runplane.sandboxes.process import CommandResult
from runplane.sandboxes.sandbox import SandboxHandle
from runplane.sandboxes.sessions import OutputChunk, SessionInfo
from runplane.sandboxes.snapshots import SnapshotInfo

__all__ = [
    "ArchiveFormat",
    "CommandResult",
    "FileInfo",
    "FileTree",
    "IsolationInfo",
    "LocalSandboxBackend",
    "OutputChunk",
    "Readiness",
    "SandboxConflictError",
    "SandboxError",
    "SandboxHandle",
    "SandboxInputError",
    "SandboxIsolationError",
    "SandboxLimitError",
    "SandboxLimits",
    "SandboxNotFoundError",
    "SandboxPathError",
    "SessionInfo",
    "SnapshotInfo",
    "TreeNode",
    "is_ready_line",
    "resolve_in_workspace",
    "wait_for_ready",
    "wait_until_listening",
]
