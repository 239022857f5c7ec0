"""tar.gz and zip of a workspace, written without ever following a symlink.

Symlinks are stored as links (their targets are not read), special files and foreign hard links
are skipped, and every file is opened through fdwalk (relative to its directory's fd, no link
followed, fstat checked), so a link pointing out of the workspace - or raced in during the walk -
never pulls outside data in.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

from runplane.sandboxes import fdwalk
from runplane.sandboxes.fdwalk import Entry, Owner, is_foreign_hardlink, open_root

ArchiveFormat = Literal["tar.gz", "zip"]
ARCHIVE_FORMATS: tuple[ArchiveFormat, ...] = ("tar.gz", "zip")
COPY_CHUNK = 1024 * 1024


def walk(root: Path, owner: Owner) -> Iterator[Entry]:
    """Every dir, regular file and symlink below root, parents before children (fdwalk: no link
    is followed, a directory swapped during the walk is skipped)."""
    root_fd = open_root(root)
    try:
        for entry in fdwalk.walk(root_fd):
            if entry.kind != "other" and not is_foreign_hardlink(entry.st, owner):
                yield entry
    finally:
        os.close(root_fd)


def open_entry(entry: Entry, owner: Owner) -> IO[bytes] | None:
    """Open a regular file of the walk; None if it was swapped for something else meanwhile."""
    fd = entry.open(owner)
    return None if fd is None else open(fd, "rb")


class ExactReader:
    """Yields exactly `size` bytes: the archive header already promised that size, so a file
    that grows is cut and one that shrinks is padded with zeros instead of corrupting it."""

    def __init__(self, src: IO[bytes], size: int) -> None:
        self.src, self.left = src, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.src.read(n)
        data += b"\0" * (n - len(data))
        self.left -= n
        return data


def temp_file(directory: Path) -> IO[bytes]:
    """An unnamed file (gone once closed) for building an archive on disk, not in memory."""
    return tempfile.TemporaryFile(dir=directory)


def write_archive(root: Path, owner: Owner, fmt: ArchiveFormat, out: IO[bytes]) -> None:
    if fmt == "tar.gz":
        write_tar(root, owner, out)
    elif fmt == "zip":
        write_zip(root, owner, out)
    else:
        raise ValueError(f"unknown archive format {fmt!r}")


def write_tar(root: Path, owner: Owner, out: IO[bytes]) -> None:
    with tarfile.open(fileobj=out, mode="w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        for entry in walk(root, owner):
            _add_tar_entry(tar, entry, owner)


def _add_tar_entry(tar: tarfile.TarFile, entry: Entry, owner: Owner) -> None:
    info = tarfile.TarInfo(entry.path)
    info.mode, info.mtime = entry.st.st_mode & 0o7777, int(entry.st.st_mtime)
    info.uid, info.gid = entry.st.st_uid, entry.st.st_gid
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind == "link":
        if (target := entry.link_target()) is not None:
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    elif (src := open_entry(entry, owner)) is not None:
        with src:
            info.size = entry.st.st_size
            tar.addfile(info, ExactReader(src, info.size))


def write_zip(root: Path, owner: Owner, out: IO[bytes]) -> None:
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for entry in walk(root, owner):
            _add_zip_entry(zf, entry, owner)


def _zip_info(entry: Entry, name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_zip_time(entry.st.st_mtime))
    info.external_attr = (entry.st.st_mode & 0xFFFF) << 16  # unix mode: unzip restores it
    return info


def _zip_time(mtime: float) -> tuple[int, int, int, int, int, int]:
    t = time.gmtime(max(mtime, 315532800))  # zip cannot store dates before 1980
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


def _add_zip_entry(zf: zipfile.ZipFile, entry: Entry, owner: Owner) -> None:
    if entry.kind == "dir":
        info = _zip_info(entry, entry.path + "/")
        info.external_attr |= 0x10  # MS-DOS directory flag
        zf.writestr(info, b"")
    elif entry.kind == "link":  # Info-ZIP convention: S_IFLNK mode, target as content
        if (target := entry.link_target()) is not None:
            zf.writestr(_zip_info(entry, entry.path), target)
    elif (src := open_entry(entry, owner)) is not None:
        info = _zip_info(entry, entry.path)
        info.compress_type = zipfile.ZIP_DEFLATED
        with src, zf.open(info, "w", force_zip64=True) as dst:
            shutil.copyfileobj(ExactReader(src, entry.st.st_size), dst, COPY_CHUNK)
