"""A real TCP proxy in front of a server, for tests that need the network to fail: `sever()` cuts every open
connection at once (both directions, no goodbye), the way a dropped Wi-Fi or a restarted load balancer
does. Each accepted connection's first bytes (the HTTP request head) are kept for inspection.

    async with TCPProxy("127.0.0.1", server_port) as proxy:
        url = f"http://127.0.0.1:{proxy.port}/..."
        ...
        proxy.sever()

Longer outages, then recovery on the same port:
- `await proxy.refuse()`: nothing listens any more (connects fail with ECONNREFUSED) and open connections are cut;
- `proxy.blackhole()`: connections are still accepted, but nothing is forwarded either way, on new or open
  ones, and nothing is closed: a partitioned network or a frozen host, the case only timeouts catch;
- `await proxy.restore()`: listen again on the same port and forward; bytes held by a blackhole are delivered
  then, as TCP retransmission would after a short partition.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class ProxiedConnection:
    head: bytes = b""
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """A request header of this connection's first request (case-insensitive)."""
        for line in self.head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
            key, _, value = line.decode(errors="replace").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


class TCPProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.connections: list[ProxiedConnection] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._closed = False

    async def __aenter__(self) -> TCPProxy:
        await self._listen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closed = True
        self.sever()
        await self._stop_listening()
        self._flowing.set()  # connections held by a blackhole wake up, see _closed and end
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def sever(self) -> int:
        """Abort every open connection (RST, not FIN); returns how many were cut."""
        cut = 0
        for connection in self.connections:
            for writer in connection.writers:
                if not writer.is_closing():
                    writer.transport.abort()
                    cut += 1
        return cut

    async def refuse(self) -> None:
        """Stop listening (new connections are refused) and cut the open ones: the server is gone."""
        await self._stop_listening()
        self.sever()

    def blackhole(self) -> None:
        """Accept, but forward nothing and close nothing, until `restore()`."""
        self._flowing.clear()

    async def restore(self) -> None:
        """Forward again, listening on the same port if `refuse()` had stopped it."""
        self._flowing.set()
        if self._server is None:
            await self._listen(self.port)

    async def _listen(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.close()
            await server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        connection = ProxiedConnection(writers=[client_writer])
        self.connections.append(connection)
        await self._flowing.wait()  # a blackhole accepts and holds the connection here
        try:
            if self._closed:
                raise ConnectionAbortedError
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.transport.abort()
            return
        connection.writers.append(upstream_writer)
        both = [
            asyncio.create_task(self._pipe(client_reader, upstream_writer, connection, record=True)),
            asyncio.create_task(self._pipe(upstream_reader, client_writer, connection, record=False)),
        ]
        self._tasks.update(both)
        try:
            await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in both:
                task.cancel()
                self._tasks.discard(task)
            for writer in (client_writer, upstream_writer):
                writer.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, connection: ProxiedConnection, *, record: bool
    ) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                if record and len(connection.head) < 16384:
                    connection.head += data
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
