"""RUNPLANE_CORS_ORIGINS reaches the WebSocket origin check: browsers apply no CORS to a WebSocket handshake but
send Origin, so the server decides. An allowed origin (and same-origin, and non-browser clients without Origin)
connects; any other origin gets 403 before the socket opens (cross-site WebSocket hijacking)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from runplane.app import create_app
from runplane.config import Settings
from runplane.graphql_view import websocket_origins
from tests.spawned import Process
from tests.support import LiveServer, UserHandle
from tests.transport.conftest import APP_ORIGIN


async def first_answer(ws_url: str, token: str, origin: str | None) -> dict[str, Any]:
    """A browser-like handshake (Origin header, graphql-transport-ws), connection_init, then `{ me { id } }`."""
    headers = {"Origin": origin} if origin else {}
    async with websockets.connect(ws_url, subprotocols=["graphql-transport-ws"], additional_headers=headers) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ me { id } }"}}))
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def refused_status(ws_url: str, origin: str) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(
            ws_url, subprotocols=["graphql-transport-ws"], additional_headers={"Origin": origin}
        ):  # type: ignore[list-item]
            pass
    return refused.value.response.status_code


async def test_a_page_on_an_allowed_origin_subscribes(browser_server: Process, user: UserHandle) -> None:
    answer = await first_answer(browser_server.ws_url, user.access_token, APP_ORIGIN)
    assert answer["type"] == "next" and answer["payload"]["data"]["me"]["id"], answer


@pytest.mark.parametrize(
    "origin", ["http://evil.example", "http://localhost:5174", "https://localhost:5173", "null", "http://localhost"]
)
async def test_other_origins_are_refused_before_the_socket_opens(browser_server: Process, origin: str) -> None:
    assert await refused_status(browser_server.ws_url, origin) == 403


async def test_same_origin_and_clients_without_origin_connect(browser_server: Process, user: UserHandle) -> None:
    same_origin = browser_server.base_url  # http://127.0.0.1:<port>: the page came from this server
    for origin in (same_origin, None):
        answer = await first_answer(browser_server.ws_url, user.access_token, origin)
        assert answer["type"] == "next", answer


async def test_without_cors_origins_only_same_origin_pages_connect(server: LiveServer) -> None:
    assert not server.settings.cors_origins
    assert await refused_status(server.ws_url, APP_ORIGIN) == 403


def test_a_malformed_origin_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    assert websocket_origins(("http://localhost:5173", "*")) == ("http://localhost:5173", "*")
    for bad in ("localhost:5173", "http://localhost:5173/app", "https://["):
        with pytest.raises(ValueError, match="RUNPLANE_CORS_ORIGINS"):
            websocket_origins((bad,))
    with pytest.raises(ValueError, match="RUNPLANE_CORS_ORIGINS"):
        create_app(Settings(data_dir=tmp_path, jwt_secret="x" * 40, cors_origins=("example.com",)))
