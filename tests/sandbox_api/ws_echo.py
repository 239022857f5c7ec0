"""A WebSocket echo server in the standard library only (it runs inside a sandbox, where no
packages are installed). Plain HTTP requests get a small text answer."""

import asyncio
import base64
import hashlib
import os
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode: int, data: bytes) -> bytes:
    size = len(data)
    head = bytes([0x80 | opcode])
    if size < 126:
        head += bytes([size])
    elif size < 65536:
        head += bytes([126]) + struct.pack(">H", size)
    else:
        head += bytes([127]) + struct.pack(">Q", size)
    return head + data


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        size = struct.unpack(">H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack(">Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4) if head[1] & 0x80 else b"\0\0\0\0"
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(await reader.readexactly(size)))
    return head[0] & 0x0F, data


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = request.split("\r\n")
    path = lines[0].split()[1]
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    if headers.get("upgrade", "").lower() != "websocket":
        body = f"plain http {path}".encode()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()
        return
    accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
    offered = headers.get("sec-websocket-protocol")
    chosen = f"Sec-WebSocket-Protocol: {offered.split(',')[0].strip()}\r\n" if offered else ""
    writer.write(
        f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept}\r\n{chosen}\r\n".encode()
    )
    writer.write(frame(1, f"hello {path}".encode()))
    while True:
        opcode, data = await read_frame(reader)
        if opcode == 8:
            writer.write(frame(8, data[:2]))
            await writer.drain()
            writer.close()
            return
        if opcode == 9:
            writer.write(frame(10, data))
        elif opcode == 1:
            writer.write(frame(1, b"echo:" + data))
        elif opcode == 2:
            writer.write(frame(2, data[::-1]))
        await writer.drain()


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", int(os.environ["PORT"]))
    print(f"listening on http://127.0.0.1:{os.environ['PORT']}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
