"""The preview proxy's way into a sandbox: HTTP connections opened inside the sandbox's network namespace.

The preview proxy's httpx client addresses a dev server as http://<sandbox id>.sandbox.invalid:<port>/;
this network backend (httpcore's extension point) turns that name into a socket connected to 127.0.0.1:<port>
inside that sandbox's namespace (SandboxHandle.connect). No name resolution happens, and there is no way to
address this host or another sandbox: a port is only ever looked up within the sandbox the token names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import httpcore
import httpx
from httpcore._backends.anyio import AnyIOStream

from runplane.sandboxes.networks import UPSTREAM_SUFFIX as SUFFIX

if TYPE_CHECKING:
    from runplane.sandboxes.sandbox import SandboxHandle


class SandboxNetworkBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, find: Callable[[str], SandboxHandle | None]) -> None:
        self.find = find

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        sandbox = self.find(host[: -len(SUFFIX)]) if host.endswith(SUFFIX) else None
        if sandbox is None:
            raise httpcore.ConnectError(f"{host} is not a sandbox of this process")
        try:
            sock = await asyncio.wait_for(sandbox.connect(port), timeout)
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"nothing answers on port {port} of the sandbox: {exc}") from None
        return AnyIOStream(await anyio.abc.SocketStream.from_socket(sock))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("no Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


class SandboxTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (request/response mapping, pooling per sandbox and port) over that backend."""

    def __init__(self, find: Callable[[str], SandboxHandle | None], limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=SandboxNetworkBackend(find),
        )
