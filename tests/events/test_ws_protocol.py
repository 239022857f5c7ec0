"""runplane/ws_protocol.py against the installed uvicorn: the batched-write extension is really offered, and
its writes arrive as ordinary text messages (permessage-deflate on and off). It reaches into uvicorn's
websockets-sansio protocol, so an uvicorn upgrade that changes it must fail here, not silently fall back."""

from __future__ import annotations

import asyncio
import json

import pytest
import uvicorn
import websockets

from runplane.ws_protocol import DirectWebSocketProtocol, direct_writes, text_frame
from tests.support import free_port


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    writes = direct_writes(scope)
    await send(
        {
            "type": "websocket.send",
            "text": json.dumps({"direct": writes is not None, "raw": bool(writes and writes.raw_framing)}),
        }
    )
    assert writes is not None
    messages = [json.dumps({"n": n}).encode() for n in range(3)]
    if writes.raw_framing:
        assert writes.write_framed(b"".join(text_frame(m) for m in messages))
    else:
        assert writes.write_texts(messages)
    await send({"type": "websocket.send", "text": "done"})
    await receive()


@pytest.fixture
async def server_url():  # type: ignore[no-untyped-def]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, ws=DirectWebSocketProtocol, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield f"ws://127.0.0.1:{port}/"
    server.should_exit = True
    await task


@pytest.mark.parametrize("compression", [None, "deflate"])
async def test_batched_writes_arrive_as_text_messages(server_url: str, compression: str | None) -> None:
    async with websockets.connect(server_url, compression=compression) as ws:
        hello = json.loads(await ws.recv())
        assert hello == {"direct": True, "raw": compression is None}
        received = [await ws.recv() for _ in range(4)]
    assert received == ['{"n": 0}', '{"n": 1}', '{"n": 2}', "done"]
