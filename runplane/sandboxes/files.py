"""Workspace file operations. Blocking functions: the SandboxHandle runs them in worker threads.

Every access goes through resolve_in_workspace and the fd walker (fdwalk.py, via paths.py), so a
symlink planted by a sandbox process never makes the control plane (possibly root) touch a file
outside the workspace.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from runplane.sandboxes.errors import (
    SandboxInputError,
    SandboxLimitError,
    SandboxNotFoundError,
    SandboxPathError,
)
from runplane.sandboxes.fdwalk import Owner, is_foreign_hardlink
from runplane.sandboxes.paths import (
    open_dir_beneath,
    open_file_beneath,
    relative_parts,
    resolve_in_workspace,
)


@dataclass(frozen=True)
class Workspace:
    root: Path  # real path of the workspace directory
    owner: Owner  # (uid, gid) files must belong to, when the sandbox has its own uid

    def parts(self, user_path: str, *, follow_final: bool = True) -> tuple[str, ...]:
        real = resolve_in_workspace(self.root, user_path, follow_final=follow_final)
        return relative_parts(self.root, real)


@dataclass(frozen=True)
class FileInfo:
    name: str
    path: str  # relative to the workspace root, "/"-separated
    is_dir: bool
    size: int
    modified_at: datetime
    is_symlink: bool = False


@dataclass
class TreeNode:
    name: str
    path: str
    is_dir: bool
    size: int
    is_symlink: bool = False
    children: list[TreeNode] = field(default_factory=list)


@dataclass
class FileTree:
    root: TreeNode
    entries: int  # nodes below the root
    truncated: bool  # max_entries was reached


def _info(parts: tuple[str, ...], st: os.stat_result) -> FileInfo:
    return FileInfo(
        name=parts[-1] if parts else "",
        path="/".join(parts),
        is_dir=stat.S_ISDIR(st.st_mode),
        size=st.st_size,
        modified_at=datetime.fromtimestamp(st.st_mtime, UTC),
        is_symlink=stat.S_ISLNK(st.st_mode),
    )


def write_file(ws: Workspace, user_path: str, data: bytes, max_bytes: int) -> FileInfo:
    """Write atomically (temp file + rename) so readers never see half an upload."""
    if len(data) > max_bytes:
        raise SandboxLimitError(f"file is larger than the upload limit of {max_bytes} bytes")
    parts = ws.parts(user_path)
    if not parts:
        raise SandboxPathError("cannot write to the workspace root")
    dir_fd = open_dir_beneath(ws.root, parts[:-1], create=True, owner=ws.owner)
    try:
        tmp = f".runplane-upload-{secrets.token_hex(8)}"
        _write_new(dir_fd, tmp, data, ws.owner)
        try:
            os.rename(tmp, parts[-1], src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError as exc:
            os.unlink(tmp, dir_fd=dir_fd)
            raise SandboxInputError(f"cannot write {'/'.join(parts)}: {exc.strerror}") from exc
        return _info(parts, os.stat(parts[-1], dir_fd=dir_fd, follow_symlinks=False))
    finally:
        os.close(dir_fd)


def _write_new(dir_fd: int, name: str, data: bytes, owner: Owner) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o644, dir_fd=dir_fd)
    with open(fd, "wb") as out:
        out.write(data)
        if owner is not None:
            os.fchown(out.fileno(), *owner)


def read_file(ws: Workspace, user_path: str, max_bytes: int) -> bytes:
    parts = ws.parts(user_path)
    fd = open_file_beneath(ws.root, parts, os.O_RDONLY | os.O_NONBLOCK)  # FIFOs must not block
    with open(fd, "rb") as src:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or is_foreign_hardlink(st, ws.owner):
            raise SandboxInputError(f"{'/'.join(parts) or '.'} is not a regular file")
        if st.st_size > max_bytes:
            raise SandboxLimitError(f"file is larger than the read limit of {max_bytes} bytes")
        data = src.read(max_bytes + 1)  # the file may grow while we read
    if len(data) > max_bytes:
        raise SandboxLimitError(f"file is larger than the read limit of {max_bytes} bytes")
    return data


def _scan(ws: Workspace, parts: tuple[str, ...]) -> list[tuple[str, os.stat_result]]:
    """Entries of one directory, dirs first, then by name; lstat (links are not followed)."""
    dir_fd = open_dir_beneath(ws.root, parts)
    try:
        entries = [(e.name, e.stat(follow_symlinks=False)) for e in os.scandir(dir_fd)]
    finally:
        os.close(dir_fd)
    return sorted(entries, key=lambda e: (not stat.S_ISDIR(e[1].st_mode), e[0]))


def list_files(ws: Workspace, user_path: str = ".", max_entries: int = 10_000) -> list[FileInfo]:
    parts = ws.parts(user_path)
    return [_info((*parts, name), st) for name, st in _scan(ws, parts)[:max_entries]]


def tree(ws: Workspace, user_path: str = ".", max_entries: int = 10_000) -> FileTree:
    """Breadth first, so a truncated tree still shows every top-level entry (a huge
    node_modules does not starve its siblings)."""
    parts = ws.parts(user_path)
    root = TreeNode(name=parts[-1] if parts else "", path="/".join(parts), is_dir=True, size=0)
    queue: deque[tuple[tuple[str, ...], TreeNode]] = deque([(parts, root)])
    count = 0
    while queue:
        dir_parts, node = queue.popleft()
        for name, st in _scan_quietly(ws, dir_parts, node is root):
            if count >= max_entries:
                return FileTree(root, count, truncated=True)
            child = _node((*dir_parts, name), st)
            node.children.append(child)
            count += 1
            if child.is_dir:
                queue.append(((*dir_parts, name), child))
    return FileTree(root, count, truncated=False)


def _scan_quietly(ws: Workspace, parts: tuple[str, ...], strict: bool) -> list[tuple[str, os.stat_result]]:
    try:
        return _scan(ws, parts)
    except (SandboxPathError, SandboxNotFoundError, PermissionError):
        if strict:
            raise
        return []  # a subdirectory removed or swapped while we walk: skip it


def _node(parts: tuple[str, ...], st: os.stat_result) -> TreeNode:
    return TreeNode(
        name=parts[-1],
        path="/".join(parts),
        is_dir=stat.S_ISDIR(st.st_mode),
        size=st.st_size,
        is_symlink=stat.S_ISLNK(st.st_mode),
    )


def delete(ws: Workspace, user_paths: list[str]) -> list[str]:
    """Delete files, symlinks (not their targets) and directory trees.

    All paths are validated before anything is removed; missing paths are skipped. Returns
    the paths that were deleted.
    """
    targets = [ws.parts(p, follow_final=False) for p in user_paths]
    if any(not parts for parts in targets):
        raise SandboxPathError("cannot delete the workspace root")
    return ["/".join(parts) for parts in targets if _delete_one(ws, parts)]


def _delete_one(ws: Workspace, parts: tuple[str, ...]) -> bool:
    try:
        dir_fd = open_dir_beneath(ws.root, parts[:-1])
    except SandboxNotFoundError:
        return False
    try:
        return remove_entry(dir_fd, parts[-1])
    finally:
        os.close(dir_fd)


def remove_entry(dir_fd: int, name: str) -> bool:
    """Remove name in dir_fd without following links; rmtree with dir_fd is fd-based too."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(name, dir_fd=dir_fd)
        else:
            os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True
