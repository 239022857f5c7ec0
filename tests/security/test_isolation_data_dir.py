"""First run as root with the data dir under a 0700 directory (a clone in /root): sandbox uids cannot
traverse it, so workspaces go to a directory of that data dir's own under /var/lib/runplane, with
modes that let each sandbox uid reach its own workspace and nothing else."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import stat
import tempfile
from pathlib import Path

import httpx
import pytest

from runplane.sandboxes import netns
from runplane.sandboxes.local import FALLBACK_WORKSPACES
from tests.sandbox_api.helpers import execute, new_sandbox
from tests.sandbox_api.serve import LIMITS, forget_uid_range
from tests.spawned import spawn_server
from tests.support import register_user, test_redis_url

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids exist only when runplane runs as root")


async def test_a_data_dir_under_a_0700_directory_works(tmp_path: Path) -> None:
    home = Path(tempfile.mkdtemp(prefix="runplane-home-", dir="/tmp"))  # mkdtemp makes it 0700, like /root
    data_dir = home / "clone" / ".runplane"
    data_dir.mkdir(parents=True)
    fallback = FALLBACK_WORKSPACES / hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:16]
    uid_start = 2_000_000 + random.randrange(0, 1000) * 1000
    settings = {**LIMITS, "SANDBOX_UID_START": uid_start, "SANDBOX_UID_COUNT": 1000, "REDIS_URL": test_redis_url()}
    try:
        async with spawn_server(data_dir, settings, name="home", health="live") as server:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
                alice = await register_user(client)
                _, sid = await new_sandbox(client, alice)  # answered 500 "not searchable by other users" before
                ran = await execute(client, alice, sid, "echo hello > f && cat f && id -u && pwd")
                assert ran["exit_code"] == 0 and ran["output"].startswith("hello\n"), ran
                written = await client.get(
                    f"/api/sandboxes/{sid}/files/content", params={"path": "f"}, headers=alice.headers
                )
                assert written.status_code == 200 and written.text == "hello\n"
        workspace = fallback / "workspaces" / sid / "workspace"
        assert (workspace / "f").read_text() == "hello\n"
        for directory in (FALLBACK_WORKSPACES, fallback, fallback / "workspaces", workspace.parent):
            assert stat.S_IMODE(directory.stat().st_mode) == 0o711, directory  # traversable, not listable
        assert stat.S_IMODE(workspace.stat().st_mode) == 0o700 and workspace.stat().st_uid >= uid_start
        assert not (data_dir / "workspaces").exists()
    finally:
        netns.unmount_under(fallback)  # the sandbox's network namespace stays mounted after the server
        shutil.rmtree(fallback, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        forget_uid_range(range(uid_start, uid_start + 1000))
