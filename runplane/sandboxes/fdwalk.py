"""The one fd walker: every file the server touches in a sandbox-controlled tree is opened here.

A sandbox process can swap any directory for a symlink at any moment (renameat2 RENAME_EXCHANGE
loops), so a path checked by name and then used by name may lead anywhere - /etc, the data dir,
another workspace. Nothing here resolves a path by name from "/": each open starts at a
directory fd and refuses symlinks on every component -
- `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)` where the kernel has it
  (Linux 5.6+, and not hidden by a seccomp filter): one syscall, checked by the kernel;
- otherwise a component-by-component walk with `O_NOFOLLOW | O_DIRECTORY` opens.
What was opened is judged by fstat on the fd (never stat-then-open by name): only regular files
are read, FIFOs and devices are skipped (opened O_NONBLOCK, so they cannot block us), and a
regular file with several links that the sandbox uid does not own (a hard link to /etc/shadow)
is treated as unreadable.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

Owner = tuple[int, int] | None

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block the open
MAX_DEPTH = 256  # deeper trees are cut, not followed

_SYS_OPENAT2 = 437  # the same number on every architecture (added after the syscall tables were unified)
_RESOLVE_NO_MAGICLINKS, _RESOLVE_NO_SYMLINKS, _RESOLVE_BENEATH = 0x02, 0x04, 0x08
_RESOLVE = _RESOLVE_BENEATH | _RESOLVE_NO_SYMLINKS | _RESOLVE_NO_MAGICLINKS


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def _load_syscall() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.syscall
    except (OSError, AttributeError):
        return None
    func.restype = ctypes.c_long
    return func


_syscall = _load_syscall()
_openat2_works: bool | None = None  # unknown until the first call answers


def openat2_available() -> bool:
    """Whether opens go through openat2 (probed once; benchmarks and tests report it)."""
    if _openat2_works is None:
        fd = open_beneath(os.open("/", DIR_FLAGS), (), DIR_FLAGS, close_dir=True)
        os.close(fd)
    return bool(_openat2_works)


def _openat2(dir_fd: int, path: str, flags: int, mode: int) -> int | None:
    """The fd, or None when this kernel (or a seccomp filter) has no openat2."""
    global _openat2_works
    if _syscall is None or _openat2_works is False:
        return None
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, _RESOLVE)
    for _ in range(8):  # EAGAIN: a concurrent rename was seen; the kernel asks us to retry
        fd = int(_syscall(_SYS_OPENAT2, dir_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how)))
        if fd >= 0:
            _openat2_works = True
            return fd
        err = ctypes.get_errno()
        if err in (errno.ENOSYS, errno.EPERM) and not _openat2_works:
            _openat2_works = False  # EPERM: seccomp profiles that predate openat2 answer so
            return None
        if err == errno.ENAMETOOLONG:
            return None  # past PATH_MAX as one string: the walk opens it a component at a time
        if err != errno.EAGAIN:
            raise OSError(err, os.strerror(err), path)
    return None  # still racing: the component-by-component walk has no such retry to give up on


def _check_parts(parts: Sequence[str]) -> None:
    for part in parts:
        if part in ("", ".", "..") or "/" in part or "\x00" in part:
            raise OSError(errno.EINVAL, "not a plain path component", part)


def open_beneath(dir_fd: int, parts: Sequence[str], flags: int, mode: int = 0o644, *, close_dir: bool = False) -> int:
    """Open dir_fd/parts[0]/.../parts[-1] without following a symlink anywhere; () opens dir_fd itself again.

    Raises OSError: ELOOP or ENOTDIR where a component is a symlink or not a directory, EXDEV when a
    path would leave dir_fd (only openat2 can tell), ENOENT, EACCES...
    """
    try:
        _check_parts(parts)
        fd = _openat2(dir_fd, "/".join(parts) or ".", flags | os.O_NOFOLLOW, mode)
        return fd if fd is not None else _walk_open(dir_fd, parts, flags | os.O_NOFOLLOW, mode)
    finally:
        if close_dir:
            os.close(dir_fd)


def _walk_open(dir_fd: int, parts: Sequence[str], flags: int, mode: int) -> int:
    if not parts:
        return os.open(".", flags | os.O_CLOEXEC, dir_fd=dir_fd)
    current = dir_fd
    try:
        for part in parts[:-1]:
            next_fd = os.open(part, DIR_FLAGS, dir_fd=current)
            if current != dir_fd:
                os.close(current)
            current = next_fd
        return os.open(parts[-1], flags | os.O_CLOEXEC, mode, dir_fd=current)
    finally:
        if current != dir_fd:
            os.close(current)


def open_root(path: str | os.PathLike[str]) -> int:
    """The walk's starting point, opened by name: a directory of the server's (a workspace, whose
    parent the sandbox cannot write), never a path inside it."""
    return os.open(path, DIR_FLAGS)


def is_foreign_hardlink(st: os.stat_result, owner: Owner) -> bool:
    """A hard link to a file the sandbox uid does not own (say /etc/shadow, where the kernel
    allows it): reading it as root would leak that file, so treat it as unreadable."""
    return owner is not None and st.st_nlink > 1 and st.st_uid != owner[0]


def readable(st: os.stat_result, owner: Owner) -> bool:
    return stat.S_ISREG(st.st_mode) and not is_foreign_hardlink(st, owner)


def open_regular(dir_fd: int, parts: Sequence[str], owner: Owner) -> tuple[int, os.stat_result] | None:
    """A regular file of the tree opened for reading, with its fstat; None for anything else
    (a FIFO, a device, a directory, a symlink, a foreign hard link, gone)."""
    try:
        fd = open_beneath(dir_fd, parts, READ_FLAGS)
    except OSError:
        return None
    st = os.fstat(fd)
    if not readable(st, owner):
        os.close(fd)
        return None
    return fd, st


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the walk's root, "/"-separated
    name: str
    dir_fd: int  # the entry's directory; valid only until the walk moves on
    st: os.stat_result  # lstat of the entry when it was listed
    depth: int

    @property
    def kind(self) -> str:
        mode = self.st.st_mode
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISREG(mode):
            return "file"
        return "link" if stat.S_ISLNK(mode) else "other"

    def link_target(self) -> str | None:
        """The symlink's text (never followed); None if it is no longer a symlink."""
        try:
            return os.readlink(self.name, dir_fd=self.dir_fd)
        except OSError:  # EINVAL: swapped for a file or directory since it was listed
            return None

    def open(self, owner: Owner) -> int | None:
        """This regular file, if it is still the very file that was listed (same inode)."""
        opened = open_regular(self.dir_fd, (self.name,), owner)
        if opened is None:
            return None
        fd, st = opened
        if (st.st_ino, st.st_dev) != (self.st.st_ino, self.st.st_dev):
            os.close(fd)
            return None
        return fd


def walk(dir_fd: int, *, skip_dirs: frozenset[str] = frozenset(), prefix: str = "") -> Iterator[Entry]:
    """Every entry below dir_fd (lstat, links not followed), sorted by name, each directory's
    entries before its subdirectories' (depth first). A subdirectory is opened again from dir_fd
    with no link followed and entered only if its fstat is the inode that was listed: one swapped
    for a symlink or another directory meanwhile is skipped. One directory fd is open at a time
    (a deep tree cannot exhaust the server's fds); dir_fd stays open (the caller's)."""
    stack: list[tuple[tuple[str, ...], tuple[int, int] | None]] = [((), None)]
    while stack:
        parts, listed_as = stack.pop()
        fd = _reopen(dir_fd, parts, listed_as)
        if fd is None:
            continue
        try:
            entries = _list(fd, prefix + "".join(f"{p}/" for p in parts), len(parts))
            yield from entries
            if len(parts) + 1 < MAX_DEPTH:
                subdirs = [e for e in entries if e.kind == "dir" and e.name not in skip_dirs]
                stack.extend(((*parts, e.name), (e.st.st_ino, e.st.st_dev)) for e in reversed(subdirs))
        finally:
            os.close(fd)


def _list(dir_fd: int, prefix: str, depth: int) -> list[Entry]:
    found: list[Entry] = []
    with os.scandir(dir_fd) as listing:
        for item in listing:
            try:
                st = item.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # removed while we list
            found.append(Entry(prefix + item.name, item.name, dir_fd, st, depth))
    return sorted(found, key=lambda e: e.name)


def _reopen(dir_fd: int, parts: tuple[str, ...], listed_as: tuple[int, int] | None) -> int | None:
    """dir_fd/parts as a directory fd, if it is still the inode it was listed as."""
    try:
        fd = open_beneath(dir_fd, parts, DIR_FLAGS)
    except OSError:
        return None  # a symlink now (ELOOP/ENOTDIR), or gone
    st = os.fstat(fd)
    if listed_as is not None and (st.st_ino, st.st_dev) != listed_as:
        os.close(fd)
        return None
    return fd
