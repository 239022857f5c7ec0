"""Ports for dev-server sessions and readiness detection."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from runplane.sandboxes import networks
from runplane.sandboxes.sessions import OutputChunk

# Lines dev servers print once they accept connections (vite, next, webpack, uvicorn, flask,
# python -m http.server, express examples, rails, astro...).
READY_PATTERN = re.compile(
    r"(\bLocal:\s+https?://|listening on|listening at|ready in\b|Serving HTTP on|"
    r"Uvicorn running on|Running on https?://|Application startup complete|"
    r"started server on|server (is )?running (at|on)|compiled successfully|\bready on\b|"
    r"Listening on https?://)",
    re.IGNORECASE,
)
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_URL = re.compile(r"https?://[A-Za-z0-9.\-\[\]]+(?::\d+)?[^\s'\")]*")


def is_ready_line(line: str) -> bool:
    return READY_PATTERN.search(_ANSI.sub("", line)) is not None


def url_in_line(line: str) -> str | None:
    match = _URL.search(_ANSI.sub("", line))
    return match.group(0) if match else None


def find_free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel had free a moment ago; the caller reserves it against our own reuse."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# Opens a TCP connection to a port of one sandbox (inside its network namespace, networks.dial).
Dialer = Callable[[int], Awaitable[socket.socket]]


async def port_accepts(port: int, dial: Dialer | None = None) -> bool:
    try:
        sock = await asyncio.wait_for(dial(port) if dial else networks.dial(None, port), timeout=1)
    except (OSError, TimeoutError):
        return False
    sock.close()
    return True


async def wait_until_listening(port: int, timeout: float, dial: Dialer | None = None) -> bool:
    """Poll until a TCP connection to the port succeeds; False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.02
    while True:
        if await port_accepts(port, dial):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.25)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    via: Literal["output", "port"] | None  # what showed it first
    url: str | None  # URL printed by the server, else http://127.0.0.1:<port>/
    line: str | None = None


async def ready_from_output(chunks: AsyncGenerator[OutputChunk, None]) -> Readiness:
    """Scan session output line by line for a readiness message; not ready if output ends."""
    pending = ""
    async with contextlib.aclosing(chunks):
        async for chunk in chunks:
            lines = (pending + chunk.text()).split("\n")
            pending = lines.pop()[-4096:]  # a partial last line waits for the rest, bounded
            for line in (*lines, pending):  # a prompt may print without a newline
                if is_ready_line(line):
                    return Readiness(True, "output", url_in_line(line), line.strip())
    return Readiness(False, None, None)


async def wait_for_ready(
    chunks: AsyncGenerator[OutputChunk, None], port: int | None, timeout: float, dial: Dialer | None = None
) -> Readiness:
    """Ready when the output says so or the port accepts connections, whichever comes first."""
    waiters: list[asyncio.Task[Readiness]] = [asyncio.ensure_future(ready_from_output(chunks))]
    if port is not None:
        waiters.append(asyncio.ensure_future(_port_ready(port, timeout, dial)))
    try:
        return await _first_ready(waiters, timeout)
    finally:
        for task in waiters:
            task.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


async def _port_ready(port: int, timeout: float, dial: Dialer | None) -> Readiness:
    if await wait_until_listening(port, timeout, dial):
        return Readiness(True, "port", f"http://127.0.0.1:{port}/")
    return Readiness(False, None, None)


async def _first_ready(waiters: list[asyncio.Task[Readiness]], timeout: float) -> Readiness:
    deadline = time.monotonic() + timeout
    pending = set(waiters)
    while pending:
        done, pending = await asyncio.wait(
            pending, timeout=max(0.0, deadline - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            break
        for task in done:
            if task.result().ready:
                return task.result()
        if waiters[0] in done:  # output ended: the session is over, it will not get ready
            break
    return Readiness(False, None, None)
