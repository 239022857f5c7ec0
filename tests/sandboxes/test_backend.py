"""Backend lifecycle: create, get, destroy, uids, idle tracking."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from runplane.sandboxes import (
    LocalSandboxBackend,
    SandboxConflictError,
    SandboxError,
    SandboxInputError,
    SandboxNotFoundError,
)

AS_ROOT = os.geteuid() == 0  # sandboxes get a uid of their own only then

Factory = Callable[..., LocalSandboxBackend]  # the make_backend fixture
Survivors = Callable[[int], Awaitable[list[int]]]  # the survivors fixture


async def test_create_get_destroy(backend: LocalSandboxBackend) -> None:
    sandbox = await backend.create("proj-1")
    assert backend.exists("proj-1") and backend.get("proj-1") is sandbox
    assert await backend.ensure("proj-1") is sandbox
    with pytest.raises(SandboxConflictError):
        await backend.create("proj-1")
    await sandbox.write_file("f.txt", b"x")
    meta = json.loads((backend.base_dir / "proj-1" / "sandbox.json").read_text())
    assert meta["id"] == "proj-1"

    await backend.destroy("proj-1")
    assert not backend.exists("proj-1") and not (backend.base_dir / "proj-1").exists()
    with pytest.raises(SandboxNotFoundError):
        backend.get("proj-1")
    with pytest.raises(SandboxNotFoundError):
        await backend.destroy("proj-1")
    if AS_ROOT:  # the uid went back to the pool
        assert sandbox.owner is not None and (backend.base_dir / ".uids").is_dir()
        assert not (backend.base_dir / ".uids" / str(sandbox.owner[0])).exists()


@pytest.mark.parametrize("bad", ["", "../x", "a/b", ".hidden", "x" * 129, "nul\x00"])
async def test_invalid_ids(backend: LocalSandboxBackend, bad: str) -> None:
    with pytest.raises(SandboxInputError):
        await backend.create(bad)


async def test_a_new_process_finds_existing_sandboxes(base_dir: Path, mode: str, make_backend: Factory) -> None:
    first = make_backend(base_dir, mode)
    created = await first.create("persisted")
    await created.write_file("kept.txt", b"kept")
    second = make_backend(base_dir, mode)  # e.g. after a restart
    again = second.get("persisted")
    assert again.owner == created.owner
    assert await again.read_file("kept.txt") == b"kept"
    assert (await again.execute("cat kept.txt")).output == "kept"


async def test_uids_are_distinct_per_sandbox(backend: LocalSandboxBackend) -> None:
    if not AS_ROOT:
        pytest.skip("uids per sandbox only when running as root")
    sandboxes = await asyncio.gather(*(backend.create(f"u{i}") for i in range(10)))
    uids = {s.owner[0] for s in sandboxes if s.owner}
    assert len(uids) == 10


async def test_destroy_kills_everything_the_sandbox_started(backend: LocalSandboxBackend, survivors: Survivors) -> None:
    sandbox = await backend.create("busy")
    await sandbox.start_session("server", "sleep 300")
    # setsid leaves the process group; without bwrap only the uid sweep can catch it
    await sandbox.start_session("escaper", "setsid sleep 300 & sleep 300")
    await asyncio.sleep(0.3)
    await backend.destroy("busy")
    if sandbox.owner is not None:
        assert await survivors(sandbox.owner[0]) == []
    assert not sandbox.workspace.exists()


async def test_last_active_tracks_every_operation(backend: LocalSandboxBackend) -> None:
    sandbox = await backend.create("idle")
    sandbox._last_active -= 100  # pretend it has been idle
    assert sandbox.idle_seconds() >= 100
    assert backend.idle_sandboxes(50) == ["idle"]
    before = sandbox.last_active_at
    await sandbox.list_files()
    assert sandbox.last_active_at > before and sandbox.idle_seconds() < 5
    assert backend.idle_sandboxes(50) == []
    for operation in (sandbox.execute("true"), sandbox.write_file("a", b""), sandbox.create_snapshot("s")):
        sandbox._last_active -= 100
        await operation
        assert sandbox.idle_seconds() < 5


async def test_base_dir_must_be_reachable_by_sandbox_uids(tmp_path: Path) -> None:
    if not AS_ROOT:
        pytest.skip("only checked when sandboxes get their own uid")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    os.chmod(locked, 0o700)
    with pytest.raises(SandboxError, match="not searchable"):
        LocalSandboxBackend(locked / "sandboxes")
