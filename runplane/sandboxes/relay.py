"""Relaying a proxied connection once its handshake is done: the two transports are joined protocol to protocol.

Copying through StreamReader/StreamWriter costs a buffer copy and a task switch per chunk each way; joining the
transports hands each received chunk straight to the other side's write, with the transports' own flow control
(a full write buffer pauses reading on the other side), so memory stays bounded by the write buffers.
"""

from __future__ import annotations

import asyncio
from typing import cast

WRITE_BUFFER = 1024 * 1024  # the default 64 KiB pauses and resumes the other side every few reads


class _Half(asyncio.Protocol):
    """Receives on one transport, writes to its peer."""

    def __init__(self, peer: asyncio.Transport, lost: asyncio.Future[None], *, upstream: bool) -> None:
        self.peer, self.lost, self.upstream = peer, lost, upstream

    def data_received(self, data: bytes) -> None:
        self.peer.write(data)

    def eof_received(self) -> bool:
        if self.upstream or not self.peer.can_write_eof():
            self.peer.close()  # the upstream is done: nothing more can come (close() flushes what is buffered)
            return False
        self.peer.write_eof()  # the client sent its request and half-closed: the answer still flows back
        return True

    def pause_writing(self) -> None:
        self.peer.pause_reading()

    def resume_writing(self) -> None:
        self.peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.peer.close()
        if not self.lost.done():
            self.lost.set_result(None)


async def splice(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Join client and upstream until both are closed. Bytes the streams already buffered (a TLS ClientHello
    sent right behind CONNECT, a server that speaks first) are passed on first."""
    loop = asyncio.get_running_loop()
    # (uvloop's transports are not asyncio.Transport subclasses, but have its methods)
    client, upstream = cast(asyncio.Transport, writer.transport), cast(asyncio.Transport, up_writer.transport)
    lost: list[asyncio.Future[None]] = [loop.create_future(), loop.create_future()]
    for source, sink in ((reader, upstream), (up_reader, client)):
        pending = _take_buffered(source)
        if pending:
            sink.write(pending)
    for transport in (client, upstream):  # bounds what one connection may hold in memory each way
        transport.set_write_buffer_limits(high=WRITE_BUFFER)
    client.set_protocol(_Half(upstream, lost[0], upstream=False))
    upstream.set_protocol(_Half(client, lost[1], upstream=True))
    if up_reader.at_eof() or client.is_closing() or upstream.is_closing():
        client.close()
        upstream.close()
    elif reader.at_eof() and upstream.can_write_eof():
        upstream.write_eof()
    client.resume_reading()
    upstream.resume_reading()
    try:
        await asyncio.gather(*lost)
    finally:
        client.close()
        upstream.close()


def _take_buffered(reader: asyncio.StreamReader) -> bytes:
    # StreamReader has no public non-blocking "give me what you hold"; its buffer is a plain bytearray (private,
    # so typeshed does not declare it).
    buffer: bytearray = reader._buffer  # type: ignore[attr-defined]
    data = bytes(buffer)
    buffer.clear()
    return data
