"""A network namespace per sandbox: its commands see their own loopback and nothing of this host's network.

Why a namespace and not (only) firewall rules: in the host's namespace every service bound to loopback
(PostgreSQL, Redis, the runplane API, other sandboxes' dev servers) and every abstract Unix socket is one
connect() away, and iptables may be absent. In a namespace of its own a sandbox has a loopback interface
and nothing else: no route leaves it. Internet egress goes through runplane's egress proxy, which listens
inside the namespace (sandboxes/egress_proxy.py); previews connect to the dev server inside it.

How (as root; Python 3.11 has no os.setns, hence the few libc calls):
- created once per sandbox by a short-lived thread that unshare()s its own network namespace, brings `lo`
  up and bind-mounts /proc/thread-self/ns/net onto <base_dir>/.netns/<sandbox id> (what `ip netns add`
  does). The mount keeps the namespace alive for every runplane process of this machine (API and worker
  run commands of the same sandbox) and across restarts; destroy() unmounts it.
- a command enters it in its preexec step (setns, before it drops to the sandbox's uid), so bubblewrap
  and everything it starts live there. Inside, bubblewrap's user namespace owns no capability over it:
  a sandbox cannot add interfaces or routes.
- runplane itself opens sockets inside (the egress proxy's listener, the preview proxy's connections)
  from one dedicated thread that setns()es into the namespace, creates the socket and switches back: a
  socket keeps the namespace it was created in, and the event loop then serves it like any other.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ctypes
import errno
import fcntl
import logging
import os
import socket
import struct
import threading
from pathlib import Path

log = logging.getLogger("runplane.sandboxes.netns")

CLONE_NEWNET = 0x40000000
MS_BIND = 0x1000
MNT_DETACH = 0x2
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1

_libc = ctypes.CDLL(None, use_errno=True)
_setns = _libc.setns
_setns.argtypes = (ctypes.c_int, ctypes.c_int)
_unshare = _libc.unshare
_unshare.argtypes = (ctypes.c_int,)
_mount = _libc.mount
_mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p)
_umount2 = _libc.umount2
_umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace `fd` refers to (needs CAP_SYS_ADMIN)."""
    _check(_setns(fd, CLONE_NEWNET), "setns")


def enter(path: str) -> None:
    """preexec step of a sandbox command: join the sandbox's namespace. Plain syscalls, no locks (this
    runs in a forked child of a threaded process); a failure aborts the start, it never runs outside."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd)
    finally:
        os.close(fd)


def is_netns(path: Path) -> bool:
    """True when `path` is a live namespace mount (after a reboot it is an empty file again)."""
    try:
        mounted = os.stat(path)
    except OSError:
        return False
    return mounted.st_dev == os.stat("/proc/self/ns/net").st_dev


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _create_in_thread(path: Path) -> None:
    """Runs in a thread of its own, which ends right after: its namespace is not the process's."""
    _check(_unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
    _loopback_up()
    source = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
    _check(_mount(source, str(path).encode(), None, MS_BIND, None), "mount --bind netns")


def create(path: Path) -> None:
    """Blocking: a new namespace with loopback up, bind-mounted on `path` (an absent or stale file).

    A stale file (an earlier boot's) is mounted over, never unlinked: in another mount namespace (the worker's
    container beside the API's) it may be a live mount, and unlinking a mount point detaches it there too."""
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            _create_in_thread(path)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="runplane-netns-create", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def remove(path: Path) -> None:
    """Blocking: unmount and delete; the namespace itself goes once no process or socket holds it."""
    result = _umount2(str(path).encode(), MNT_DETACH)
    if result != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
        log.warning("could not unmount the network namespace %s: %s", path, os.strerror(ctypes.get_errno()))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def mounted_under(root: Path) -> list[str]:
    """Namespace mounts below `root` (from /proc/self/mountinfo; octal escapes such as \\040 decoded)."""
    prefix = os.path.realpath(root).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
        for line in table:
            fields = line.split(" - ", 1)
            point = fields[0].split(" ")[4].encode("latin-1", "surrogateescape").decode("unicode_escape")
            if len(fields) == 2 and fields[1].startswith("nsfs ") and point.startswith(prefix):
                found.append(point)
    return found


def unmount_under(root: Path) -> int:
    """Blocking: unmount every namespace mount below `root` (a data dir being thrown away: tests, an operator
    wiping a machine); a directory holding one cannot be removed otherwise. Returns how many went."""
    points = mounted_under(root)
    for point in points:
        _umount2(point.encode(), MNT_DETACH)
    return len(points)


class NamespaceSockets:
    """Creates sockets inside a namespace from one dedicated thread (setns in, socket(), setns back).

    Serialised on that single thread, so the switch never leaks into other work; a thread that could
    not switch back is poisoned and replaced (it would open sockets in the wrong namespace)."""

    def __init__(self) -> None:
        self._host = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="runplane-netns")

    def _make(self, path: str, family: int, kind: int) -> socket.socket:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd)
        finally:
            os.close(fd)
        try:
            return socket.socket(family, kind)
        finally:
            try:
                setns(self._host)
            except OSError:
                log.critical("a netns thread could not return to the host namespace; replacing it")
                self._pool.shutdown(wait=False)
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="runplane-netns")
                raise

    async def open_socket(
        self, path: Path, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM
    ) -> socket.socket:
        loop = asyncio.get_running_loop()
        sock: socket.socket = await loop.run_in_executor(self._pool, self._make, str(path), family, kind)
        sock.setblocking(False)
        return sock

    async def connect(self, path: Path, port: int, host: str = "127.0.0.1") -> socket.socket:
        """A TCP socket connected to host:port inside the namespace (OSError when nothing listens)."""
        sock = await self.open_socket(path)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        with contextlib.suppress(OSError):
            os.close(self._host)


def probe() -> str:
    """Blocking: "" when a namespace can be made here (one is made in a throwaway thread and dropped), else why."""
    reason = available()
    if reason:
        return reason
    failure: list[str] = []

    def run() -> None:
        if _unshare(CLONE_NEWNET) != 0:
            failure.append(f"network namespaces cannot be made here ({os.strerror(ctypes.get_errno())})")

    thread = threading.Thread(target=run, name="runplane-netns-probe", daemon=True)
    thread.start()
    thread.join()
    return failure[0] + "; a container needs CAP_SYS_ADMIN" if failure else ""


def available() -> str:
    """ "" when namespaces can be made here, else why not (checked once by the backend)."""
    if os.geteuid() != 0:
        return "runplane does not run as root (a network namespace per sandbox needs CAP_SYS_ADMIN)"
    if not os.path.exists("/proc/self/ns/net"):
        return "this kernel has no network namespaces"
    return ""
