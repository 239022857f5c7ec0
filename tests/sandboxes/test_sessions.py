"""Background sessions: live output, resumable offsets, dev servers on allocated ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from runplane.sandboxes import (
    LocalSandboxBackend,
    SandboxConflictError,
    SandboxHandle,
    SandboxInputError,
    SandboxLimitError,
    SandboxNotFoundError,
    is_ready_line,
    wait_until_listening,
)
from runplane.sandboxes.ports import find_free_port, url_in_line

Factory = Callable[..., LocalSandboxBackend]  # the make_backend fixture
Survivors = Callable[[int], Awaitable[list[int]]]  # the survivors fixture


async def _wait_finished(sandbox: SandboxHandle, name: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.session_status(name).status == "running":
        assert time.monotonic() < deadline, "session did not finish"
        await asyncio.sleep(0.05)


async def test_dev_server_on_allocated_port_is_reachable(sandbox: SandboxHandle) -> None:
    await sandbox.write_file("site/index.html", b"<h1>hello from the sandbox</h1>")
    port = sandbox.allocate_port()
    status = await sandbox.start_session(
        "web",
        "exec python3 -m http.server $PORT --bind 127.0.0.1",
        cwd="site",
        env={"PYTHONUNBUFFERED": "1"},
        port=port,
    )
    assert status.status == "running" and status.port == port

    ready = await sandbox.wait_for_dev_server("web", timeout=15)
    assert ready.ready, sandbox.session_status("web").output_tail
    assert ready.via in ("output", "port")
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://127.0.0.1:{port}/index.html")
    assert response.status_code == 200
    assert response.text == "<h1>hello from the sandbox</h1>"
    await asyncio.sleep(0.2)  # the access log line reaches the session output
    assert "GET /index.html" in sandbox.session_status("web").output_tail

    stopped = await sandbox.stop_session("web")
    assert stopped.status == "killed" and stopped.completed_at is not None
    assert not await wait_until_listening(port, timeout=0.3)


async def test_output_streams_live_and_resumes_from_offsets(sandbox: SandboxHandle) -> None:
    await sandbox.start_session("ticker", "for i in 1 2 3 4 5; do echo line$i; sleep 0.3; done; exit 7")
    started = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    last_offset = 0
    async for chunk in sandbox.stream_session("ticker"):
        assert chunk.offset == last_offset  # contiguous, nothing lost or repeated
        last_offset = chunk.next_offset
        arrivals.append((time.monotonic() - started, chunk.text()))
    text = "".join(t for _, t in arrivals)
    assert text == "".join(f"line{i}\n" for i in range(1, 6))
    first_line_at = next(at for at, t in arrivals if "line1" in t)
    assert arrivals[-1][0] - first_line_at > 0.6  # line1 came live, long before the end
    status = sandbox.session_status("ticker")
    assert (status.status, status.exit_code, status.output_offset) == ("exited", 7, len(text))

    # a reader that saw the first two lines resumes exactly after them
    resumed = sandbox.session_output("ticker", after_offset=len("line1\nline2\n"))
    assert resumed.text() == "line3\nline4\nline5\n"
    tail = [c.text() async for c in sandbox.stream_session("ticker", from_offset=len(text) - 6)]
    assert tail == ["line5\n"]


async def test_session_output_is_a_bounded_ring(base_dir: Path, mode: str, make_backend: Factory) -> None:
    cap = 64 * 1024
    backend = make_backend(base_dir, mode, max_output_bytes=cap)
    sandbox = await backend.create("ring")
    await sandbox.start_session("noisy", "head -c 1000000 /dev/zero | tr '\\0' 'a'; echo END")
    await _wait_finished(sandbox, "noisy")
    chunk = sandbox.session_output("noisy", after_offset=0)
    assert chunk.offset == 1_000_004 - cap  # the oldest output was dropped, offsets kept
    assert len(chunk.data) == cap and chunk.text().endswith("aaaEND\n")
    assert sandbox.session_status("noisy").output_offset == 1_000_004
    await backend.destroy("ring")


async def test_session_names_and_limits(base_dir: Path, mode: str, make_backend: Factory) -> None:
    backend = make_backend(base_dir, mode, max_sessions=2)
    sandbox = await backend.create("names")
    for bad in ["", "a b", "x" * 65, "../up", "slash/name", ".."]:
        with pytest.raises(SandboxInputError):
            await sandbox.start_session(bad, "true")
    await sandbox.start_session("one", "sleep 30")
    with pytest.raises(SandboxConflictError):
        await sandbox.start_session("one", "sleep 30")
    await sandbox.start_session("two.v2_x-y", "sleep 30")
    with pytest.raises(SandboxLimitError):
        await sandbox.start_session("three", "sleep 30")
    with pytest.raises(SandboxNotFoundError):
        sandbox.session_status("nope")
    await sandbox.stop_session("one")
    await sandbox.start_session("one", "echo again")  # a finished name can be reused
    await _wait_finished(sandbox, "one")
    assert sandbox.session_output("one").text() == "again\n"
    await backend.destroy("names")


async def test_session_timeout_and_stop_all(sandbox: SandboxHandle, survivors: Survivors) -> None:
    await sandbox.start_session("short", "sleep 30", timeout=0.5)
    await sandbox.start_session("long", "trap '' TERM; sleep 300")  # ignores SIGTERM
    await _wait_finished(sandbox, "short")
    assert sandbox.session_status("short").status == "killed"
    started = time.monotonic()
    await sandbox.stop_all(grace=0.5)
    assert time.monotonic() - started < 3
    assert sandbox.session_status("long").status == "killed"
    assert not sandbox.has_running_sessions
    if sandbox.owner is not None:
        assert await survivors(sandbox.owner[0]) == []


async def test_readiness_from_output_only(sandbox: SandboxHandle) -> None:
    await sandbox.start_session(
        "vite", "sleep 0.3; printf '  \\033[32m➜\\033[0m  Local:   http://localhost:5173/\\n'; sleep 30"
    )
    ready = await sandbox.wait_for_dev_server("vite", timeout=10)
    assert (ready.ready, ready.via, ready.url) == (True, "output", "http://localhost:5173/")
    await sandbox.start_session("crash", "echo booting; exit 1")
    failed = await sandbox.wait_for_dev_server("crash", port=find_free_port(), timeout=10)
    assert not failed.ready  # it exited: no need to wait for the timeout


@pytest.mark.parametrize(
    "line",
    [
        "  VITE v5.0.0  ready in 312 ms",
        "  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   http://localhost:5173/",
        "INFO:     Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)",
        "Serving HTTP on 127.0.0.1 port 8000 (http://127.0.0.1:8000/) ...",
        "Server listening on port 3000",
        "  - Local:        http://localhost:3000",
        " * Running on http://127.0.0.1:5000",
    ],
)
def test_ready_lines(line: str) -> None:
    assert is_ready_line(line)


def test_not_ready_lines_and_urls() -> None:
    assert not is_ready_line("Compiling...") and not is_ready_line("npm WARN deprecated")
    assert url_in_line("Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ...") == "http://0.0.0.0:8000/"


async def test_allocated_ports_are_not_handed_out_twice(sandbox: SandboxHandle) -> None:
    ports = {sandbox.allocate_port() for _ in range(20)}
    assert len(ports) == 20
    assert not await wait_until_listening(ports.pop(), timeout=0.2)
