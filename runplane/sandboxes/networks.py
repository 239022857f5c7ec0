"""The network namespaces of one backend's sandboxes: made on first use, shared by every runplane process.

Layout: <base_dir>/.netns/<sandbox id> is the namespace's bind mount, <id>.lock serialises its creation
between processes (API and worker may start the first command of a sandbox at the same moment).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from runplane.sandboxes import egress_proxy, netns
from runplane.sandboxes.egress_policy import EgressPolicy

log = logging.getLogger("runplane.sandboxes.netns")
# http://<sandbox id>.sandbox.invalid:<port>/ names a sandbox's dev server for the preview proxy
# (sandboxes/upstream.py); .invalid never resolves (RFC 2606), so a leaked name reaches nothing.
UPSTREAM_SUFFIX = ".sandbox.invalid"


@dataclass(frozen=True)
class SandboxNetwork:
    path: Path  # the namespace's bind mount, entered by every command of the sandbox
    sockets: netns.NamespaceSockets  # opens runplane's own sockets inside it
    proxy: str | None = None  # host:port of the egress proxy inside the namespace; None: no internet


async def dial(network: SandboxNetwork | None, port: int) -> socket.socket:
    """A TCP socket connected to the sandbox's 127.0.0.1:port: inside its namespace when it has one (no other
    sandbox can answer there), else on this host's loopback. OSError when nothing listens."""
    if network is not None:
        return await network.sockets.connect(network.path, port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except BaseException:
        sock.close()
        raise
    return sock


def network_env(network: SandboxNetwork | None, env: dict[str, str]) -> dict[str, str]:
    """The proxy variables (both spellings: curl reads only lowercase http_proxy) unless the command set its own."""
    if network is None or network.proxy is None:
        return env
    http, socks = f"http://{network.proxy}", f"socks5h://{network.proxy}"
    wanted: Mapping[str, str] = {
        "HTTP_PROXY": http,
        "HTTPS_PROXY": http,
        "ALL_PROXY": socks,
        "NO_PROXY": "localhost,127.0.0.1,::1",
    }
    for name, value in wanted.items():
        env.setdefault(name, value)
        env.setdefault(name.lower(), value)
    return env


class SandboxNetworks:
    def __init__(self, base_dir: Path, policy: EgressPolicy | None = None) -> None:
        self.dir = base_dir / ".netns"
        self.reason = netns.available()  # "" when namespaces can be made
        self.policy = policy or EgressPolicy()
        self.sockets: netns.NamespaceSockets | None = None
        # This process's egress listener per sandbox, with the inode of the namespace it listens in.
        self._proxies: dict[str, tuple[int, asyncio.Server]] = {}
        self._logged = False

    @property
    def enabled(self) -> bool:
        return not self.reason

    def path(self, sandbox_id: str) -> Path:
        return self.dir / sandbox_id

    async def ensure(self, sandbox_id: str) -> SandboxNetwork | None:
        """The sandbox's namespace (made now if missing or stale), or None when this host cannot make one."""
        self._log_once()
        if not self.enabled:
            return None
        path = self.path(sandbox_id)
        if not netns.is_netns(path):
            try:
                await asyncio.to_thread(self._create_locked, path)
            except PermissionError as exc:  # root without CAP_SYS_ADMIN (a container's default capabilities)
                self.reason = f"network namespaces cannot be made here ({exc}); a container needs CAP_SYS_ADMIN"
                self._logged = False
                self._log_once()
                return None
        proxy = await self._ensure_proxy(sandbox_id, path) if self.policy.enabled else None
        return SandboxNetwork(path, self.socket_maker(), proxy)

    async def _ensure_proxy(self, sandbox_id: str, path: Path) -> str | None:
        """This process's egress listener inside the namespace ("127.0.0.1:3128"), None when it cannot bind
        (only a sandbox that took the port itself first can cause that: it then has no way out)."""
        identity = os.stat(path).st_ino  # the namespace's own inode: another process may have made it anew
        current = self._proxies.get(sandbox_id)
        if current is not None and current[0] != identity:
            current[1].close()  # its listener sits in the namespace of a sandbox destroyed since
            del self._proxies[sandbox_id]
        if sandbox_id not in self._proxies:
            server = await self._listen(sandbox_id, path)
            if server is None:
                return None
            if sandbox_id in self._proxies:  # a concurrent ensure() of this process won
                server.close()
            else:
                self._proxies[sandbox_id] = (identity, server)
        return f"127.0.0.1:{egress_proxy.PORT}"

    async def _listen(self, sandbox_id: str, path: Path) -> asyncio.Server | None:
        sock = await self.socket_maker().open_socket(path)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # the other runplane processes
            sock.bind(("127.0.0.1", egress_proxy.PORT))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            log.warning("sandbox %s: no egress proxy (port %d taken: %s)", sandbox_id, egress_proxy.PORT, exc)
            return None
        handle = egress_proxy.EgressProxy(self.policy, sandbox_id).handle
        return await asyncio.start_server(handle, sock=sock, limit=egress_proxy.BUFFER)

    def _create_locked(self, path: Path) -> None:
        self.dir.mkdir(mode=0o700, exist_ok=True)
        with _flock(path.with_name(path.name + ".lock")):
            if not netns.is_netns(path):  # another process may have made it while we waited
                netns.create(path)

    async def remove(self, sandbox_id: str) -> None:
        if (proxy := self._proxies.pop(sandbox_id, None)) is not None:
            proxy[1].close()
        if self.enabled:
            path = self.path(sandbox_id)
            await asyncio.to_thread(netns.remove, path)
            path.with_name(path.name + ".lock").unlink(missing_ok=True)

    def socket_maker(self) -> netns.NamespaceSockets:
        if self.sockets is None:
            self.sockets = netns.NamespaceSockets()
        return self.sockets

    def close(self) -> None:
        for _, server in self._proxies.values():
            server.close()
        self._proxies.clear()
        if self.sockets is not None:
            self.sockets.close()
            self.sockets = None

    def _log_once(self) -> None:
        if self._logged:
            return
        self._logged = True
        if self.enabled:
            log.info(
                "sandboxes get a network namespace each: they see their own loopback only; internet %s",
                "through runplane's egress proxy" if self.policy.enabled else "egress is off",
            )
        else:
            log.warning(
                "NO network namespace per sandbox: %s. Sandbox commands share this host's network "
                "(only the iptables guard, when active, keeps them off its services)",
                self.reason,
            )


@contextlib.contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
