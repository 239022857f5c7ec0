"""Workspace snapshots: tar.gz files kept beside (not inside) the workspace.

Blocking functions, run in worker threads by the SandboxHandle. The snapshot directory belongs to the
control plane (mode 0700), so sandbox processes can neither read nor tamper with snapshots.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import secrets
import shutil
import tarfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from runplane.clock import iso_z, now
from runplane.sandboxes.archive import walk, write_tar
from runplane.sandboxes.errors import (
    SandboxConflictError,
    SandboxInputError,
    SandboxLimitError,
    SandboxNotFoundError,
)
from runplane.sandboxes.fdwalk import DIR_FLAGS, Owner, open_regular, open_root
from runplane.sandboxes.files import Workspace, remove_entry
from runplane.sandboxes.paths import open_dir_beneath

SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
MAX_SNAPSHOTS = 50
MAX_DESCRIPTION = 1000
MAX_DIFF_FILE_BYTES = 512 * 1024  # difflib is quadratic at worst: larger files are summarized
_TOO_LARGE = b"\0too-large\0"  # sentinel content


@dataclass(frozen=True)
class SnapshotInfo:
    id: str
    description: str
    created_at: datetime
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class SnapshotStore:
    def __init__(self, directory: Path, workspace: Workspace, max_diff_bytes: int) -> None:
        self.dir, self.ws, self.max_diff_bytes = directory, workspace, max_diff_bytes
        # create/restore/delete run in worker threads; one at a time per sandbox keeps
        # "exists?" checks and the files they guard consistent.
        self.lock = threading.Lock()

    def _tar(self, snapshot_id: str) -> Path:
        return self.dir / f"{snapshot_id}.tar.gz"

    def _meta(self, snapshot_id: str) -> Path:
        return self.dir / f"{snapshot_id}.json"

    def create(self, snapshot_id: str, description: str = "") -> SnapshotInfo:
        with self.lock:
            return self._create(snapshot_id, description)

    def _create(self, snapshot_id: str, description: str) -> SnapshotInfo:
        if not SNAPSHOT_ID.match(snapshot_id):
            raise SandboxInputError("snapshot id must match ^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$")
        if len(description) > MAX_DESCRIPTION:
            raise SandboxInputError("snapshot description is too long")
        if self._meta(snapshot_id).exists():
            raise SandboxConflictError(f"snapshot {snapshot_id} already exists")
        if len(self.list()) >= MAX_SNAPSHOTS:
            raise SandboxLimitError(f"a sandbox keeps at most {MAX_SNAPSHOTS} snapshots")
        tmp = self.dir / f".{snapshot_id}.{secrets.token_hex(4)}.tmp"
        try:
            with open(tmp, "xb") as out:
                write_tar(self.ws.root, self.ws.owner, out)
            os.replace(tmp, self._tar(snapshot_id))
        finally:
            tmp.unlink(missing_ok=True)
        info = SnapshotInfo(snapshot_id, description, now(), self._tar(snapshot_id).stat().st_size)
        meta = {**info.as_dict(), "created_at": iso_z(info.created_at)}
        self._meta(snapshot_id).write_text(json.dumps(meta))  # written last: marks it complete
        return info

    def list(self) -> list[SnapshotInfo]:
        infos = [self._load(p) for p in self.dir.glob("*.json")]
        return sorted(infos, key=lambda i: (i.created_at, i.id))

    def get(self, snapshot_id: str) -> SnapshotInfo:
        if not SNAPSHOT_ID.match(snapshot_id) or not self._meta(snapshot_id).exists():
            raise SandboxNotFoundError(f"snapshot {snapshot_id} not found")
        return self._load(self._meta(snapshot_id))

    @staticmethod
    def _load(path: Path) -> SnapshotInfo:
        raw = json.loads(path.read_text())
        return SnapshotInfo(raw["id"], raw["description"], datetime.fromisoformat(raw["created_at"]), raw["size_bytes"])

    def delete(self, snapshot_id: str) -> None:
        with self.lock:
            self.get(snapshot_id)
            self._meta(snapshot_id).unlink(missing_ok=True)
            self._tar(snapshot_id).unlink(missing_ok=True)

    def restore(self, snapshot_id: str) -> SnapshotInfo:
        """Replace the workspace contents with the snapshot's.

        Extracts into a staging directory only we can reach (no sandbox process can plant
        links there mid-extraction), then swaps entries into the workspace with fd-relative
        renames. The workspace directory itself stays, so bind mounts of running sessions see
        the restored files.
        """
        with self.lock:
            info = self.get(snapshot_id)
            staging = self.dir.parent / f".restore-{secrets.token_hex(6)}"
            staging.mkdir(mode=0o700)
            try:
                with tarfile.open(self._tar(snapshot_id), "r:gz") as tar:
                    tar.extractall(staging, filter=_owned_by(self.ws.owner))
                _replace_contents(self.ws.root, staging)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
            return info

    def diff(self, snapshot_id: str) -> str:
        """Unified diff from the snapshot (a/) to the current workspace (b/)."""
        self.get(snapshot_id)
        current = {e.path: e.kind for e in walk(self.ws.root, self.ws.owner) if e.kind != "dir"}
        out = _DiffOutput(self.max_diff_bytes)
        with tarfile.open(self._tar(snapshot_id), "r:gz") as tar:
            for member in tar:  # sequential: gzip cannot seek cheaply
                if member.isdir():
                    continue
                kind = current.pop(member.name, None)
                new = _current_content(self.ws, member.name, kind) if kind else None
                out.add(member.name, _member_content(tar, member), new)
        for path, kind in current.items():  # files that were added since the snapshot
            out.add(path, None, _current_content(self.ws, path, kind))
        return out.text()


def _owned_by(owner: Owner) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """Extraction filter: the stdlib 'tar' filter (no absolute or escaping names, no setuid
    bits) and files owned by the sandbox uid."""

    def extraction_filter(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        member = tarfile.tar_filter(member, dest)
        if owner is not None:
            member = member.replace(uid=owner[0], gid=owner[1], uname="", gname="", deep=False)
        return member

    return extraction_filter


def _replace_contents(workspace: Path, staging: Path) -> None:
    ws_fd, st_fd = open_root(workspace), os.open(staging, DIR_FLAGS)
    try:
        for name in os.listdir(ws_fd):
            remove_entry(ws_fd, name)
        for name in os.listdir(st_fd):
            remove_entry(ws_fd, name)  # recreated meanwhile by a running process
            os.rename(name, name, src_dir_fd=st_fd, dst_dir_fd=ws_fd)
    finally:
        os.close(ws_fd)
        os.close(st_fd)


def _member_content(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes | None:
    if member.issym():
        return member.linkname.encode()
    if not member.isfile():
        return None
    if member.size > MAX_DIFF_FILE_BYTES:
        return _TOO_LARGE
    src = tar.extractfile(member)
    return src.read() if src else None


def _current_content(ws: Workspace, path: str, kind: str) -> bytes | None:
    parts = tuple(path.split("/"))
    try:
        if kind == "link":
            dir_fd = open_dir_beneath(ws.root, parts[:-1])
            try:
                return os.readlink(parts[-1], dir_fd=dir_fd).encode()
            finally:
                os.close(dir_fd)
        root_fd = open_root(ws.root)
        try:
            opened = open_regular(root_fd, parts, ws.owner)  # fstat: a FIFO or foreign link swapped in is not read
        finally:
            os.close(root_fd)
        if opened is None:
            return None
        with open(opened[0], "rb") as src:
            data = src.read(MAX_DIFF_FILE_BYTES + 1)
    except (OSError, SandboxNotFoundError, SandboxInputError, ValueError):
        return None  # changed while we diff: treat as gone
    return _TOO_LARGE if len(data) > MAX_DIFF_FILE_BYTES else data


def _is_binary(data: bytes) -> bool:
    if b"\0" in data[:8192]:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def file_diff(path: str, old: bytes | None, new: bytes | None) -> str:
    """git-style unified diff of one file; None means the file does not exist on that side."""
    if old == new:
        return ""
    a = f"a/{path}" if old is not None else "/dev/null"
    b = f"b/{path}" if new is not None else "/dev/null"
    if _TOO_LARGE in (old, new):
        return f"Files {a} and {b} differ (too large to diff)\n"
    if any(side is not None and _is_binary(side) for side in (old, new)):
        return f"Binary files {a} and {b} differ\n"
    old_lines = (old or b"").decode().splitlines(keepends=True)
    new_lines = (new or b"").decode().splitlines(keepends=True)
    lines = difflib.unified_diff(old_lines, new_lines, a, b)
    text = "".join(ln if ln.endswith("\n") else ln + "\n\\ No newline at end of file\n" for ln in lines)
    return text or f"--- {a}\n+++ {b}\n"  # e.g. an empty file added or removed


class _DiffOutput:
    """Per-file diffs in path order, cut at max_bytes in total (diffs can be huge)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.size, self.cut = max_bytes, 0, False
        self.parts: dict[str, str] = {}

    def add(self, path: str, old: bytes | None, new: bytes | None) -> None:
        if self.cut:
            return
        text = file_diff(path, old, new)
        if self.size + len(text) > self.max_bytes:
            self.cut = True
            return
        self.size += len(text)
        if text:
            self.parts[path] = text

    def text(self) -> str:
        body = "".join(self.parts[p] for p in sorted(self.parts))
        return body + ("\n... diff truncated: output limit reached\n" if self.cut else "")
