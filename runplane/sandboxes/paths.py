"""Confining user paths to a workspace.

Two layers, because a check alone is racy: a process inside the sandbox can swap a directory for
a symlink between our check and our use of the path. So
1. `resolve_in_workspace` validates the path and resolves symlinks (refusing any that leave the
   root), giving a real path inside the root;
2. the `open_*_beneath` helpers then open that real path from the root's fd through fdwalk
   (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or an O_NOFOLLOW walk), so a symlink raced in
   after step 1 fails (ELOOP/ENOTDIR) instead of being followed.
The control plane may run as root: it must never follow a sandbox link.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePosixPath

from runplane.sandboxes.errors import SandboxInputError, SandboxNotFoundError, SandboxPathError
from runplane.sandboxes.fdwalk import DIR_FLAGS, open_beneath, open_root

MAX_PATH_BYTES = 4096  # PATH_MAX
MAX_NAME_BYTES = 255  # NAME_MAX


def _validate(user_path: str) -> list[str]:
    """Syntactic checks; returns the components without '' and '.'."""
    if not isinstance(user_path, str):
        raise SandboxPathError("path must be a string")
    if "\x00" in user_path:
        raise SandboxPathError("path contains a NUL byte")
    if len(user_path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise SandboxPathError("path is too long")
    if user_path.startswith("/"):
        raise SandboxPathError("absolute paths are not allowed; use one relative to the workspace")
    parts = [p for p in user_path.split("/") if p not in ("", ".")]
    if any(len(p.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for p in parts):
        raise SandboxPathError("a path component is too long")
    depth = 0
    for part in parts:  # lexical escape check gives a clear message before touching the disk
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise SandboxPathError("path escapes the workspace")
    return parts


def _inside(root: Path, candidate: str) -> bool:
    return candidate == str(root) or candidate.startswith(str(root) + os.sep)


def resolve_in_workspace(root: Path, user_path: str, *, follow_final: bool = True) -> Path:
    """Return the real path of `user_path` inside `root`, or raise SandboxPathError.

    Relative paths are relative to the root; "" and "." mean the root. Symlinks are resolved
    like the kernel would (so `link/..` is the link target's parent); any resolved path outside
    the root is refused. With follow_final=False the last component is not resolved (to delete
    or replace a symlink itself rather than its target). Missing components are allowed.
    """
    parts = _validate(user_path)
    real_root = Path(os.path.realpath(root))
    if not parts:
        return real_root
    try:
        if follow_final or parts[-1] == "..":
            resolved = os.path.realpath(os.path.join(real_root, *parts))
        else:
            parent = os.path.realpath(os.path.join(real_root, *parts[:-1]))
            resolved = os.path.join(parent, parts[-1])
            if not _inside(real_root, parent):
                raise SandboxPathError("path escapes the workspace through a symlink")
    except OSError as exc:  # EINVAL from readlink: a link swapped for a directory while we resolved
        raise SandboxPathError("the path changed while it was resolved; try again") from exc
    if not _inside(real_root, resolved):
        raise SandboxPathError("path escapes the workspace through a symlink")
    return Path(resolved)


def relative_parts(root: Path, real_path: Path) -> tuple[str, ...]:
    """Components of a path returned by resolve_in_workspace, relative to the real root."""
    rel = os.path.relpath(real_path, os.path.realpath(root))
    return () if rel == "." else PurePosixPath(rel).parts


def _translate(exc: OSError, what: str) -> Exception:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EXDEV, errno.EINVAL):
        return SandboxPathError(f"{what}: a path component is a symlink or not a directory")
    if exc.errno == errno.ENOENT:
        return SandboxNotFoundError(f"{what}: no such file or directory")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SandboxInputError(f"{what}: permission denied")
    return exc


def open_dir_beneath(
    root: Path,
    parts: tuple[str, ...],
    *,
    create: bool = False,
    owner: tuple[int, int] | None = None,
) -> int:
    """Open directory root/parts... without following any symlink (fdwalk); returns an fd to close.

    create=True makes missing directories (chowned to `owner`, the sandbox uid, so commands can
    write into directories that uploads created), one component at a time from the parent's fd.
    """
    fd = open_root(root)
    try:
        if not create:
            return open_beneath(fd, parts, DIR_FLAGS, close_dir=True)
        for part in parts:
            try:
                _mkdir_at(fd, part, owner)
            except OSError:
                os.close(fd)
                raise
            fd = open_beneath(fd, (part,), DIR_FLAGS, close_dir=True)
        return fd
    except OSError as exc:
        raise _translate(exc, "/".join(parts)) from exc


def _mkdir_at(dir_fd: int, name: str, owner: tuple[int, int] | None) -> None:
    try:
        os.mkdir(name, 0o755, dir_fd=dir_fd)
    except FileExistsError:
        return
    if owner is not None:
        os.chown(name, *owner, dir_fd=dir_fd, follow_symlinks=False)


def open_file_beneath(root: Path, parts: tuple[str, ...], flags: int, mode: int = 0o644) -> int:
    """Open a file below root without following symlinks anywhere on the way (fdwalk)."""
    if not parts:
        raise SandboxInputError("the workspace root is a directory, not a file")
    try:
        return open_beneath(open_root(root), parts, flags, mode, close_dir=True)
    except OSError as exc:
        raise _translate(exc, "/".join(parts)) from exc
