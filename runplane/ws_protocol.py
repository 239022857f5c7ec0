"""uvicorn's websockets-sansio protocol plus a batched-write ASGI extension for the fan-out path.

Through plain ASGI every message is one `websocket.send` → one sans-io frame build → one
`transport.write`. A run watched by a thousand sockets spends most of its time there. This protocol
puts a `runplane.ws.direct` object in the scope's extensions; the fan-out (schema/fanout.py) uses it
to write many text messages, or bytes it already framed once for every socket, in ONE write.

Anything else (accept, close, pings, Strawberry's own messages) goes through uvicorn unchanged; both
paths write synchronously to the same transport, so message order is program order.

    uvicorn.run(app, ws=DirectWebSocketProtocol)   # or uvicorn.Config(..., ws=DirectWebSocketProtocol)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

EXTENSION = "runplane.ws.direct"
_TEXT_FIN = 0x81


def text_frame(data: bytes) -> bytes:
    """A complete unmasked server→client text frame (RFC 6455 §5.2): header + data."""
    size = len(data)
    if size < 126:
        return bytes((_TEXT_FIN, size)) + data
    if size < 65536:
        return struct.pack("!BBH", _TEXT_FIN, 126, size) + data
    return struct.pack("!BBQ", _TEXT_FIN, 127, size) + data


class DirectWrites:
    """The extension object: synchronous, batched writes to one WebSocket connection."""

    __slots__ = ("_protocol",)

    def __init__(self, protocol: DirectWebSocketProtocol) -> None:
        self._protocol = protocol

    @property
    def raw_framing(self) -> bool:
        """True when no extension (permessage-deflate) was negotiated: `text_frame` bytes are valid."""
        return not self._protocol.conn.extensions

    @property
    def open(self) -> bool:
        p = self._protocol
        return not (p.disconnected or p.close_sent or p.transport.is_closing()) and p.conn.state is State.OPEN

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (the transport's write buffer)."""
        return self._protocol.transport.get_write_buffer_size()

    def write_framed(self, data: bytes) -> bool:
        """Writes bytes made of `text_frame`s (only when `raw_framing`). False if the socket is gone."""
        if not self.open:
            return False
        self._protocol.transport.write(data)
        return True

    def write_texts(self, texts: Iterable[bytes]) -> bool:
        """Frames each UTF-8 text message (through the sans-io connection, so negotiated
        compression applies) and writes them all at once. False if the socket is gone."""
        if not self.open:
            return False
        conn = self._protocol.conn
        for text in texts:
            conn.send_text(text)
        self._protocol.transport.write(b"".join(conn.data_to_send()))
        return True

    async def drained(self) -> None:
        """Returns once the transport's buffer fell below its low-water mark (or the socket closed)."""
        await self._protocol.writable.wait()

    def close(self, code: int, reason: str) -> None:
        """Starts the closing handshake now (e.g. a slow consumer), without awaiting the app's send."""
        p = self._protocol
        if not self.open:
            return
        p.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        p.conn.send_close(code, reason)
        p.transport.write(b"".join(p.conn.data_to_send()))
        p.close_sent = True
        if p.read_paused:
            p.read_paused = False
            p.transport.resume_reading()
        p.close_timer = p.loop.call_later(p.close_timeout, p.transport.close)


class DirectWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:  # absent when the handshake was refused
            scope["extensions"][EXTENSION] = DirectWrites(self)


def direct_writes(scope: Any) -> DirectWrites | None:
    extensions = scope.get("extensions") or {}
    writes = extensions.get(EXTENSION)
    return writes if isinstance(writes, DirectWrites) else None


__all__ = ["EXTENSION", "DirectWebSocketProtocol", "DirectWrites", "direct_writes", "text_frame"]
