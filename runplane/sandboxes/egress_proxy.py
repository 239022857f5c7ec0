"""The egress proxy: a sandbox's only way to the internet, listening inside its network namespace.

One listener per sandbox and runplane process on 127.0.0.1:3128 inside the namespace (SO_REUSEPORT: the API
and worker processes each keep one; a sandbox uid cannot join that group, and the port is taken before its
first command runs). It speaks, on the same port:
- HTTP CONNECT host:port (HTTPS_PROXY for https, git, npm, pip),
- HTTP with an absolute URI (HTTP_PROXY for plain http), one request per connection,
- SOCKS5 CONNECT without authentication (ALL_PROXY=socks5h://, names resolved here).
Every destination goes through EgressPolicy (egress_policy.py) and is dialled from the host's namespace,
to the very address that was checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import struct

from runplane.sandboxes.egress_policy import EgressDenied, EgressPolicy
from runplane.sandboxes.relay import splice

log = logging.getLogger("runplane.sandboxes.egress_proxy")

PORT = 3128
HEAD_LIMIT = 64 * 1024  # request line and headers of one proxied request
HEAD_TIMEOUT = 30.0
CONNECT_TIMEOUT = 15.0
# Stream buffers: asyncio pauses reading at twice this; the 64 KiB default made bulk downloads 3x slower.
BUFFER = 1024 * 1024
MAX_CONNECTIONS = 128  # open proxied connections per sandbox and process; more wait
Upstream = tuple[asyncio.StreamReader, asyncio.StreamWriter]
_HOP = {b"proxy-connection", b"proxy-authorization", b"connection", b"keep-alive"}


class ProxyError(Exception):
    def __init__(self, status: int, reason: str, socks_code: int) -> None:
        super().__init__(reason)
        self.status, self.reason, self.socks_code = status, reason, socks_code


class EgressProxy:
    """Serves the connections of one sandbox's listener (accepted by the event loop like any server)."""

    def __init__(self, policy: EgressPolicy, sandbox_id: str) -> None:
        self.policy, self.sandbox_id = policy, sandbox_id
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with self._slots:
            try:
                async with asyncio.timeout(HEAD_TIMEOUT):  # the whole handshake: a silent client goes
                    first = await reader.readexactly(1)
                    upstream = await (
                        self._socks5(reader, writer) if first == b"\x05" else self._http(first, reader, writer)
                    )
                if upstream is not None:
                    await splice(reader, writer, *upstream)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                pass
            finally:
                writer.close()  # (no wait_closed: after a splice the stream's protocol is no longer attached)

    async def _dial(self, host: str, port: int) -> Upstream:
        if not 0 < port < 65536:
            raise ProxyError(400, "bad port", 1)
        try:
            addresses = await self.policy.resolve(host, port)
        except EgressDenied as exc:
            log.info("sandbox %s: egress to %s:%d refused: %s", self.sandbox_id, host, port, exc)
            raise ProxyError(403, f"refused by runplane's egress policy: {exc}", 2) from None
        except OSError:
            raise ProxyError(502, f"cannot resolve {host}", 4) from None
        for address in addresses:
            with contextlib.suppress(OSError, TimeoutError):
                connecting = asyncio.open_connection(str(address), port, limit=BUFFER)
                return await asyncio.wait_for(connecting, CONNECT_TIMEOUT)
        raise ProxyError(502, f"cannot connect to {host}:{port}", 5)

    # -- HTTP ---------------------------------------------------------------------------------------------
    async def _http(self, first: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Upstream | None:
        """The upstream once the request is accepted (and answered or forwarded), None when refused."""
        head = first + await reader.readuntil(b"\r\n\r\n")
        if len(head) > HEAD_LIMIT:
            raise ValueError("head too large")
        line, *headers = head[:-4].split(b"\r\n")
        try:
            method, target, version = line.split(b" ")
            if method == b"CONNECT":
                host, port = _split_authority(target.decode("ascii"), None)
                upstream = await self._dial(host, port)
                writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                return upstream
            host, port, path = _absolute_http(target.decode("ascii"))
            upstream = await self._dial(host, port)
        except ProxyError as exc:
            await _refuse_http(writer, exc)
            return None
        except (ValueError, UnicodeDecodeError):
            await _refuse_http(writer, ProxyError(400, "expected CONNECT or an absolute http:// URI", 1))
            return None
        kept = [h for h in headers if h.split(b":", 1)[0].strip().lower() not in _HOP]
        request = b"\r\n".join([b" ".join((method, path, version)), *kept, b"Connection: close"]) + b"\r\n\r\n"
        upstream[1].write(request)
        return upstream

    # -- SOCKS5 -------------------------------------------------------------------------------------------
    async def _socks5(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Upstream | None:
        methods = await reader.readexactly((await reader.readexactly(1))[0])
        if 0 not in methods:
            writer.write(b"\x05\xff")  # only "no authentication" is offered
            return None
        writer.write(b"\x05\x00")
        version, command, _, kind = await reader.readexactly(4)
        try:
            if version != 5 or command != 1:
                raise ProxyError(400, "only CONNECT", 7)
            host = await _socks_host(reader, kind)
            (port,) = struct.unpack("!H", await reader.readexactly(2))
            upstream = await self._dial(host, port)
        except ProxyError as exc:
            writer.write(bytes((5, exc.socks_code, 0, 1)) + bytes(6))
            return None
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        return upstream


async def _socks_host(reader: asyncio.StreamReader, kind: int) -> str:
    if kind == 1:
        return str(ipaddress.IPv4Address(await reader.readexactly(4)))
    if kind == 4:
        return str(ipaddress.IPv6Address(await reader.readexactly(16)))
    if kind == 3:
        return (await reader.readexactly((await reader.readexactly(1))[0])).decode("ascii")
    raise ProxyError(400, "unknown address type", 8)


def _split_authority(authority: str, default_port: int | None) -> tuple[str, int]:
    host, sep, port = authority.rpartition(":")
    if not sep or host.endswith(":") or (host.count(":") and not host.startswith("[")):
        if default_port is None:
            raise ValueError("a port is required")
        host, port = authority, str(default_port)
    if not host or not port.isascii() or not port.isdigit():
        raise ValueError("bad authority")
    return host.strip("[]"), int(port)


def _absolute_http(target: str) -> tuple[str, int, bytes]:
    if not target.lower().startswith("http://"):
        raise ValueError("not an absolute http URI")
    authority, slash, rest = target[7:].partition("/")
    authority = authority.rpartition("@")[2]  # credentials in the URI are not ours to forward
    host, port = _split_authority(authority, 80)
    return host, port, (slash + rest or "/").encode("ascii")


async def _refuse_http(writer: asyncio.StreamWriter, error: ProxyError) -> None:
    body = f"runplane egress proxy: {error.reason}\n".encode()
    writer.write(
        f"HTTP/1.1 {error.status} {'Forbidden' if error.status == 403 else 'Error'}\r\n"
        f"Content-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(OSError):
        await writer.drain()
