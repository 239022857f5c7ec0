"""Slow clients against a real `runplane serve` (httptools with runplane's deadlines): 300 slowloris connections
that trickle header lines are closed once their headers are overdue, a body that stalls is cut, and normal
requests are served meanwhile. uvicorn's access log keeps no credential of SSE and preview URLs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.spawned import Process, spawn_server
from tests.support import register_user

HEADER_TIMEOUT, BODY_TIMEOUT = 2.0, 2.0
SLOWLORIS = 300


@pytest.fixture(scope="module")
async def strict(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Process]:
    settings = {"http_header_timeout": HEADER_TIMEOUT, "http_body_timeout": BODY_TIMEOUT, "log_level": "INFO"}
    async with spawn_server(tmp_path_factory.mktemp("strict"), settings, name="strict") as proc:
        yield proc


async def trickle_headers(port: int, closed_after: list[float]) -> None:
    """A slowloris client: a request line, then one header line every half second, never the blank line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    opened = time.monotonic()
    writer.write(b"GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    try:
        for n in range(40):  # 20 s at most
            await asyncio.sleep(0.5)
            writer.write(f"X-Slow-{n}: still coming\r\n".encode())
            await writer.drain()
            if reader.at_eof() or await _closed(reader):
                break
    except (ConnectionError, OSError):
        pass
    closed_after.append(time.monotonic() - opened)
    writer.close()


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 0.01) == b""
    except TimeoutError:
        return False


async def test_slowloris_connections_are_closed_when_their_headers_are_overdue(strict: Process) -> None:
    closed_after: list[float] = []
    attack = asyncio.gather(*(trickle_headers(strict.port or 0, closed_after) for _ in range(SLOWLORIS)))
    await asyncio.sleep(1)
    async with httpx.AsyncClient(base_url=strict.base_url, timeout=5) as http:
        assert (await http.get("/api/health")).status_code == 200  # others are served meanwhile
    await attack
    assert len(closed_after) == SLOWLORIS
    assert max(closed_after) < HEADER_TIMEOUT + 3, sorted(closed_after)[-5:]


async def test_a_stalled_body_is_cut(strict: Process) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.port or 0)
    head = b"POST /api/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    writer.write(head + b'{"email": ')
    opened = time.monotonic()
    answer = await asyncio.wait_for(reader.read(), BODY_TIMEOUT + 5)  # whatever comes, then the close
    assert time.monotonic() - opened < BODY_TIMEOUT + 3
    assert not answer.startswith(b"HTTP/1.1 2"), answer
    writer.close()


async def test_the_access_log_keeps_no_token(strict: Process) -> None:
    async with httpx.AsyncClient(base_url=strict.base_url, timeout=10) as http:
        user = await register_user(http)
        secret = user.access_token
        await http.get(f"/api/agent-run/00000000-0000-0000-0000-000000000000/stream?token={secret}&after=3")
        await http.get("/preview/some-preview-token-value/index.html")
    await asyncio.sleep(0.5)
    log = strict.log()
    assert "stream?token=[redacted]&after=3" in log, log[-2000:]
    assert "/preview/[redacted]/index.html" in log
    assert secret not in log and "some-preview-token-value" not in log
