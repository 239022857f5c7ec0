"""A frozen copy of a workspace folder: what a deploy publishes, taken through the fd walker.

A deploy used to collect names with os.walk and copy them later by name, which a sandbox command
racing renameat2(RENAME_EXCHANGE) between a directory and a symlink turned into "copy /etc/shadow
into the public site". Here every byte is read from an fd that fdwalk opened (no symlink on any
component, fstat'd as a regular file the sandbox may show us) and written into a directory only the
server can reach; providers then publish from that copy, which no sandbox process can change.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from runplane.sandboxes.errors import SandboxLimitError
from runplane.sandboxes.fdwalk import DIR_FLAGS, Owner, open_beneath, open_root, walk

COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FrozenFile:
    path: str  # relative to the copied folder, "/"-separated
    size: int  # bytes actually copied (not the size the sandbox's stat claimed)


@dataclass(frozen=True)
class FreezeLimits:
    max_files: int
    max_bytes: int
    skip_dirs: frozenset[str] = frozenset()


def freeze_folder(
    root: Path, parts: tuple[str, ...], dest: Path, owner: Owner, limits: FreezeLimits
) -> list[FrozenFile]:
    """Copy the regular files below root/parts into dest (a new directory, mode 0700).

    Symlinks, FIFOs, devices and foreign hard links are left out; SandboxLimitError past the limits.
    OSError (ELOOP, ENOTDIR, ENOENT) when root/parts is not a directory reachable without links.
    """
    src_fd = open_beneath(open_root(root), parts, DIR_FLAGS, close_dir=True)
    try:
        dest.mkdir(mode=0o700)
        return _copy_tree(src_fd, dest, owner, limits)
    finally:
        os.close(src_fd)


def _copy_tree(src_fd: int, dest: Path, owner: Owner, limits: FreezeLimits) -> list[FrozenFile]:
    copied: list[FrozenFile] = []
    budget = limits.max_bytes
    for entry in walk(src_fd, skip_dirs=limits.skip_dirs):
        if entry.kind != "file":
            continue
        fd = entry.open(owner)
        if fd is None:
            continue  # swapped, removed or not ours since it was listed
        if len(copied) >= limits.max_files:
            os.close(fd)
            raise SandboxLimitError(f"more than {limits.max_files} files")
        size = _copy_fd(fd, dest / entry.path, budget)
        budget -= size
        copied.append(FrozenFile(entry.path, size))
    return copied


def _copy_fd(fd: int, target: Path, budget: int) -> int:
    """Copy an open file (closing it) into target, at most `budget` bytes: the file may grow as we read."""
    target.parent.mkdir(parents=True, exist_ok=True)  # dest is the server's: names are safe here
    written = 0
    with open(fd, "rb") as src, open(target, "xb") as out:
        while chunk := src.read(min(COPY_CHUNK, budget - written + 1)):
            written += len(chunk)
            if written > budget:
                raise SandboxLimitError("more bytes than the limit")
            out.write(chunk)
    return written
