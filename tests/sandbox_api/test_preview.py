"""Dev servers and previews: a real Python http.server and a WebSocket echo server run in sandbox
sessions and are reached through the preview URL, with no Authorization header."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import connect

from tests.sandbox_api.helpers import execute, new_sandbox, sse_frames
from tests.support import UserHandle

WS_ECHO = (Path(__file__).with_name("ws_echo.py")).read_bytes()


async def upload(client: httpx.AsyncClient, user: UserHandle, sid: str, files: dict[str, bytes]) -> None:
    parts = [("file", (p.rsplit("/", 1)[-1], data)) for p, data in files.items()]
    response = await client.post(
        f"/api/sandboxes/{sid}/files", files=parts, data={"path": list(files)}, headers=user.headers
    )
    assert response.status_code == 200, response.text


async def start_dev_server(
    client: httpx.AsyncClient, user: UserHandle, sid: str, command: str, **body: Any
) -> dict[str, Any]:
    """Start it with a port of its own and wait for the dev-server stream's `ready` event."""
    started = await execute(client, user, sid, command, blocking=False, dev_server=True, **body)
    assert isinstance(started["port"], int) and started["status"] == "running", started
    frames = await sse_frames(
        client,
        f"/api/sandboxes/{sid}/dev-server/stream",
        headers=user.headers,
        until="ready",
        params={"session_name": started["session_name"]},
    )
    ready = frames[-1]
    assert ready["port"] == started["port"] and ready["preview_url"].startswith("http://127.0.0.1:")
    return started


async def preview_url(client: httpx.AsyncClient, user: UserHandle, sid: str, **params: str) -> str:
    response = await client.get(f"/api/sandboxes/{sid}/preview-url", params=params, headers=user.headers)
    assert response.status_code == 200, response.text
    url: str = response.json()["url"]
    return url


async def test_http_server_is_served_through_the_preview_url(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    _, sid = await new_sandbox(client, alice)
    await upload(
        client,
        alice,
        sid,
        {"index.html": b"<h1>hello preview</h1>", "sub/data.json": b'{"ok": true}', "a b?.txt": b"odd"},
    )
    started = await start_dev_server(client, alice, sid, "python3 -m http.server $PORT --bind 127.0.0.1")
    url = await preview_url(client, alice, sid)
    assert url.endswith("/") and "/preview/" in url

    async with httpx.AsyncClient(timeout=10) as browser:  # no Authorization header, as in an iframe
        page = await browser.get(url)
        assert page.status_code == 200 and page.text == "<h1>hello preview</h1>"
        assert page.headers["content-type"].startswith("text/html")
        # http.server sends its own Server and Date: the proxy answers with one of each, uvicorn's.
        for name in ("server", "date"):
            assert len(page.headers.get_list(name)) == 1, page.headers
        data = await browser.get(url + "sub/data.json", params={"v": "1"})
        assert data.json() == {"ok": True}
        assert (await browser.get(url + "a%20b%3F.txt")).text == "odd"  # the path reaches the server still encoded
        # http.server redirects a directory without its slash: the Location comes back through the proxy.
        redirected = await browser.get(url + "sub")
        assert redirected.status_code == 301
        assert redirected.headers["location"] == httpx.URL(url).path + "sub/"
        followed = await browser.get(url + "sub", follow_redirects=True)
        assert followed.status_code == 200 and "data.json" in followed.text
        assert (await browser.head(url)).status_code == 200
        without_slash = await browser.get(url.rstrip("/"))
        assert without_slash.status_code == 308 and without_slash.headers["location"].endswith("/")

        token = url.rstrip("/").rsplit("/", 1)[1]
        forged = url.replace(token, token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"))
        assert (await browser.get(forged)).status_code == 404
        access_token = url.replace(token, alice.access_token)  # an access token is not a preview token
        assert (await browser.get(access_token)).status_code == 404

    # Bob cannot get a preview of Alice's sandbox.
    assert (await client.get(f"/api/sandboxes/{sid}/preview-url", headers=bob.headers)).status_code == 404
    # Once the dev server stops, its preview answers 502.
    await client.post(f"/api/sandboxes/{sid}/sessions/{started['session_name']}/stop", headers=alice.headers)
    async with httpx.AsyncClient(timeout=10) as browser:
        gone = await browser.get(url)
        assert gone.status_code == 502 and gone.json()["code"] == "PREVIEW_UNAVAILABLE"


async def test_websocket_is_proxied_through_the_preview_url(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    await upload(client, alice, sid, {"ws_echo.py": WS_ECHO})
    await start_dev_server(client, alice, sid, "python3 ws_echo.py", session_name="hmr")
    url = await preview_url(client, alice, sid, session_name="hmr")
    ws_url = url.replace("http://", "ws://") + "socket?x=1"

    async with connect(ws_url, subprotocols=["vite-hmr"]) as socket:  # type: ignore[list-item]
        assert socket.subprotocol == "vite-hmr"  # the dev server's choice reaches the browser
        assert await socket.recv() == "hello /socket?x=1"
        await socket.send("ping")
        assert await socket.recv() == "echo:ping"
        await socket.send(b"\x01\x02\x03")
        assert await socket.recv() == b"\x03\x02\x01"
        big = "x" * 200_000
        await socket.send(big)
        assert await socket.recv() == "echo:" + big

    async with httpx.AsyncClient(timeout=10) as browser:  # the same server's plain HTTP, same URL
        assert (await browser.get(url + "plain")).text == "plain http /plain"

    forged = ws_url.replace("/preview/", "/preview/x")
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with connect(forged):
            pass


async def test_dev_server_stream_reports_output_and_readiness(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    command = (
        "echo compiling; sleep 0.5; echo '  VITE ready in 12 ms'; echo \"  Local: http://localhost:$PORT/\"; sleep 30"
    )
    started = await execute(client, alice, sid, command, blocking=False, dev_server=True)
    assert started["session_name"] == "dev-server"
    frames = await sse_frames(client, f"/api/sandboxes/{sid}/dev-server/stream", headers=alice.headers, until="ready")
    output = "".join(f["content"] for f in frames if f["type"] == "output")
    assert output.startswith("compiling\n")
    ready = frames[-1]
    assert ready["via"] == "output" and "ready in" in ready["line"] and ready["session_name"] == "dev-server"
    assert ready["preview_url"] is not None  # nothing listens on the port: the output said it is ready
    expo = await client.get(f"/api/sandboxes/{sid}/expo-url", headers=alice.headers)
    assert expo.status_code == 200 and expo.json()["url"].startswith("exp://") and "/preview/" in expo.json()["url"]
    await client.post(f"/api/sandboxes/{sid}/sessions/dev-server/stop", headers=alice.headers)


async def test_preview_needs_a_dev_server(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice)
    assert (await client.get(f"/api/sandboxes/{sid}/preview-url", headers=alice.headers)).status_code == 404
    # Any session is previewable (each has a port of its own): a dev server started without dev_server too.
    await execute(client, alice, sid, "sleep 20", blocking=False, session_name="plain")
    plain = await client.get(
        f"/api/sandboxes/{sid}/preview-url", params={"session_name": "plain"}, headers=alice.headers
    )
    assert plain.status_code == 200 and plain.json()["session_name"] == "plain"
    await client.post(f"/api/sandboxes/{sid}/sessions/plain/stop", headers=alice.headers)
    stopped = await client.get(
        f"/api/sandboxes/{sid}/preview-url", params={"session_name": "plain"}, headers=alice.headers
    )
    assert stopped.status_code == 502
