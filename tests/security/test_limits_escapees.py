"""Every process of a command dies with it: a double-forked `setsid` child (its own session and process
group, reparented away from the shell) must not outlive the command, nor a session's stop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from runplane.sandboxes import LocalSandboxBackend, cgroups
from tests.sandboxes.conftest import BackendFactory

# Leaves a file 2 s later from a process that left the command's session and process group twice over.
ESCAPE = (
    "setsid sh -c 'sleep 2; echo out > escaped_{n}' </dev/null >/dev/null 2>&1 & "
    "(setsid sh -c '(sleep 2; echo out > escaped_double_{n}) &' </dev/null >/dev/null 2>&1 &); "
    "echo started"
)


async def test_setsid_escapees_die_with_their_command(base_dir: Path, mode: str, make_backend: BackendFactory) -> None:
    if mode == "plain" and not cgroups.support().kills:
        pytest.skip("without bubblewrap, escapees are killed through cgroups, which runplane cannot make here")
    backend: LocalSandboxBackend = make_backend(base_dir, mode, wall_time_seconds=20)
    sandbox = await backend.create("escapees")
    result = await sandbox.execute(ESCAPE.format(n="cmd"))
    assert result.exit_code == 0 and result.output == "started\n"
    timed = await sandbox.execute(ESCAPE.format(n="timeout") + "; sleep 30", timeout=1)
    assert timed.timed_out

    await sandbox.start_session("dev", ESCAPE.format(n="session") + "; exec sleep 300")
    await asyncio.sleep(0.5)
    await sandbox.stop_session("dev", grace=0.2)

    await asyncio.sleep(3)  # the escapees would have written by now
    assert sorted(p.name for p in sandbox.workspace.iterdir()) == []
    await backend.destroy(sandbox.id)
