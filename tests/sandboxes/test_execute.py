"""Commands: real processes under the real limits, in both isolation modes."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from runplane.sandboxes import (
    LocalSandboxBackend,
    SandboxHandle,
    SandboxInputError,
    SandboxIsolationError,
    SandboxNotFoundError,
    SandboxPathError,
)

AS_ROOT = os.geteuid() == 0  # sandboxes get a uid of their own only then

Factory = Callable[..., LocalSandboxBackend]  # the make_backend fixture
UidProcs = Callable[..., list[int]]  # the uid_processes fixture
Survivors = Callable[[int], Awaitable[list[int]]]  # the survivors fixture


async def test_output_exit_code_and_cwd(sandbox: SandboxHandle) -> None:
    await sandbox.write_file("sub/dir/f.txt", b"data")
    result = await sandbox.execute("echo out; echo err >&2; cat f.txt; exit 3", cwd="sub/dir")
    assert (result.exit_code, result.timed_out, result.truncated) == (3, False, False)
    assert result.output == "out\nerr\ndata"
    assert result.output_bytes == len(result.output)
    with pytest.raises(SandboxPathError):
        await sandbox.execute("true", cwd="../..")
    with pytest.raises(SandboxNotFoundError):
        await sandbox.execute("true", cwd="nope")
    with pytest.raises(SandboxInputError):
        await sandbox.execute("   ")


async def test_wall_time_kills_the_whole_process_group(sandbox: SandboxHandle, survivors: Survivors) -> None:
    started = time.monotonic()
    # a background child that would leave a mark after 2 s, and a foreground sleep
    result = await sandbox.execute("(sleep 2; touch late_mark) & sleep 300", timeout=1)
    assert result.timed_out and result.exit_code == 137
    assert time.monotonic() - started < 4
    await asyncio.sleep(2.5)
    assert not (sandbox.workspace / "late_mark").exists(), "a child outlived the timeout"
    if sandbox.owner is not None:
        assert await survivors(sandbox.owner[0]) == []


async def test_background_children_are_reaped_when_the_shell_exits(sandbox: SandboxHandle) -> None:
    result = await sandbox.execute("(sleep 2; touch late_mark) & echo started")
    assert result.exit_code == 0 and result.output == "started\n"
    assert result.duration_ms < 2000
    await asyncio.sleep(2.5)
    assert not (sandbox.workspace / "late_mark").exists()


async def test_cancelling_execute_kills_the_command(sandbox: SandboxHandle) -> None:
    task = asyncio.ensure_future(sandbox.execute("sleep 1; touch late_mark; sleep 300"))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.5)
    assert not (sandbox.workspace / "late_mark").exists()


async def test_output_flood_is_cut_at_the_cap_quickly(base_dir: Path, mode: str, make_backend: Factory) -> None:
    backend = make_backend(base_dir, mode, max_output_bytes=64 * 1024)
    sandbox = await backend.create("flood")
    result = await sandbox.execute("yes")
    assert result.truncated and not result.timed_out
    assert len(result.output) == 64 * 1024 and result.output.startswith("y\ny\n")
    assert result.output_bytes > 64 * 1024
    assert result.duration_ms < 3000
    await backend.destroy("flood")


async def test_environment_is_clean(sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPLANE_TEST_SECRET", "hunter2-must-not-leak")
    result = await sandbox.execute("env; echo HOME=$HOME; pwd", env={"MY_VAR": "v1", "HOME": "/x"})
    assert "hunter2" not in result.output and "RUNPLANE_TEST_SECRET" not in result.output
    assert "MY_VAR=v1" in result.output
    home = result.output.split("HOME=")[-1].split("\n")[0]
    assert home in ("/workspace", str(sandbox.workspace))  # callers cannot move HOME
    with pytest.raises(SandboxInputError):
        await sandbox.execute("true", env={"BAD NAME": "x"})
    with pytest.raises(SandboxInputError):
        await sandbox.execute("true", env={"X": "nul\x00"})


async def test_server_environment_is_not_readable_through_proc(sandbox: SandboxHandle) -> None:
    if sandbox.owner is None:
        pytest.skip("without its own uid a plain sandbox can read our /proc entries")
    result = await sandbox.execute(f"cat /proc/{os.getpid()}/environ")
    assert result.exit_code != 0


async def test_file_size_limit(base_dir: Path, mode: str, make_backend: Factory) -> None:
    backend = make_backend(base_dir, mode, max_file_bytes=1024 * 1024)
    sandbox = await backend.create("fsize")
    result = await sandbox.execute("head -c 5000000 /dev/zero > big; echo status=$?")
    assert "status=153" in result.output or "File too large" in result.output  # SIGXFSZ
    assert (sandbox.workspace / "big").stat().st_size <= 1024 * 1024
    result = await sandbox.execute("dd if=/dev/zero of=big2 bs=1M count=3")
    assert result.exit_code != 0
    assert (sandbox.workspace / "big2").stat().st_size <= 1024 * 1024
    await backend.destroy("fsize")


async def test_cpu_and_memory_limits(base_dir: Path, mode: str, make_backend: Factory) -> None:
    backend = make_backend(base_dir, mode, cpu_seconds=1, memory_bytes=256 * 1024 * 1024)
    sandbox = await backend.create("cpu")
    started = time.monotonic()
    result = await sandbox.execute("while :; do :; done")
    assert not result.timed_out and result.exit_code in (128 + 24, 128 + 9)  # SIGXCPU/SIGKILL
    assert time.monotonic() - started < 15  # 1 s of CPU, however loaded the machine is
    result = await sandbox.execute("python3 -c 'b = bytearray(1024**3)'")
    assert result.exit_code == 1 and "MemoryError" in result.output
    await backend.destroy("cpu")


async def test_fork_bomb_is_contained(
    base_dir: Path, mode: str, make_backend: Factory, uid_processes: UidProcs, survivors: Survivors
) -> None:
    if not AS_ROOT:
        pytest.skip("per-sandbox process limits need a uid of its own (control plane as root)")
    limit = 64
    backend = make_backend(base_dir, mode, max_processes=limit, wall_time_seconds=4)
    sandbox = await backend.create("bomb")
    uid = sandbox.owner[0]  # type: ignore[index]
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, len(uid_processes(uid, zombies=True)))
            time.sleep(0.01)

    sampler = asyncio.ensure_future(asyncio.to_thread(sample))
    started = time.monotonic()
    # every process forks forever: without a limit this exhausts the machine in seconds
    result = await sandbox.execute("bomb() { while :; do bomb & done; }; bomb")
    elapsed = time.monotonic() - started
    stop.set()
    await sampler
    assert result.timed_out and elapsed < 8, "the call must return at its wall time"
    assert "Resource temporarily unavailable" in result.output  # fork hit RLIMIT_NPROC
    assert limit / 2 < peak <= limit, f"{peak} processes of the sandbox uid, limit {limit}"
    assert await survivors(uid) == []  # nothing survives the call
    # The machine stays healthy; the sandbox too, once init has reaped the killed processes
    # (zombies count against the uid's process limit until then).
    assert (await asyncio.create_subprocess_exec("true")).pid > 0
    for _ in range(100):
        if not uid_processes(uid, zombies=True):
            break
        await asyncio.sleep(0.1)
    healthy = await sandbox.execute("echo still fine")
    assert healthy.output == "still fine\n"
    await backend.destroy("bomb")


async def test_isolation_required_but_unavailable_is_refused(base_dir: Path, make_backend: Factory) -> None:
    backend = LocalSandboxBackend(
        base_dir / "strict", make_backend(base_dir, "plain", require_isolation=True).limits, use_bwrap=False
    )
    sandbox = await backend.create("strict")
    with pytest.raises(SandboxIsolationError):
        await sandbox.execute("true")
    offline = make_backend(base_dir / "offline", "plain", network=False)
    with pytest.raises(SandboxIsolationError):  # cannot enforce network=False without bwrap
        await (await offline.create("offline")).execute("true")


async def test_bwrap_view_of_the_system(base_dir: Path, mode: str, make_backend: Factory) -> None:
    if mode != "bwrap":
        pytest.skip("bubblewrap only")
    backend = make_backend(base_dir, mode)
    sandbox = await backend.create("view")
    result = await sandbox.execute("pwd; ls /; ls /root 2>&1; touch /usr/x 2>&1; ps -e --no-headers | wc -l; id -u")
    lines = result.output.splitlines()
    assert lines[0] == "/workspace"
    assert "root" not in lines[1 : lines.index("workspace") + 1] and "workspace" in lines
    assert any("No such file" in line for line in lines)  # /root is not there
    assert any("Read-only file system" in line for line in lines)
    assert int(lines[-2]) <= 4  # own pid namespace: bwrap, bash, ps, wc
    assert lines[-1] == "65534"
    await backend.destroy("view")


async def test_network_off_under_bwrap(base_dir: Path, mode: str, make_backend: Factory) -> None:
    if mode != "bwrap":
        pytest.skip("bubblewrap only")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2)'"
        online = await (await make_backend(base_dir / "on", mode).create("on")).execute(probe)
        offline = await (await make_backend(base_dir / "off", mode, network=False).create("off")).execute(probe)
    assert online.exit_code == 0, online.output
    assert offline.exit_code != 0 and "refused" in offline.output.lower()


async def test_plain_sandboxes_cannot_read_each_other(base_dir: Path, mode: str, make_backend: Factory) -> None:
    if not AS_ROOT:
        pytest.skip("needs a uid per sandbox")
    backend = make_backend(base_dir, mode)
    one, two = await backend.create("one"), await backend.create("two")
    await one.write_file("secret.txt", b"top secret")
    result = await two.execute(f"cat {one.workspace}/secret.txt")
    assert result.exit_code != 0 and "top secret" not in result.output
    assert one.owner != two.owner
