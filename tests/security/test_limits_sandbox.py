"""Limits of a whole sandbox, attacked from inside: memory held by several processes at once, a fork bomb,
and files that together pass the workspace's disk quota (each under the per-file limit)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from runplane.sandboxes import SandboxLimitError, cgroups
from runplane.sandboxes.limits import GIB, KIB, MIB
from runplane.sandboxes.quota import usage
from tests.sandbox_api.helpers import execute, new_sandbox
from tests.sandbox_api.serve import sandbox_server
from tests.sandboxes.conftest import BackendFactory
from tests.spawned import reachable_dir
from tests.support import register_user

HOLD = (
    "for i in 1 2 3 4; do "
    "(python3 -c \"import time; x = b'x' * (700 << 20); print('held', flush=True); time.sleep(5)\"; echo rc=$?) & "
    "done; wait"
)


def need_cgroup(controller: str) -> None:
    if controller not in cgroups.support().limits:
        pytest.skip(f"runplane cannot make {controller} cgroups here: {'; '.join(cgroups.support().notes)}")


async def test_four_700_mb_allocations_do_not_fit_in_one_gib(
    base_dir: Path, mode: str, make_backend: BackendFactory
) -> None:
    need_cgroup("memory")
    backend = make_backend(base_dir, mode, sandbox_memory_bytes=1 * GIB, wall_time_seconds=60)
    sandbox = await backend.create("memory")
    result = await sandbox.execute(HOLD)
    codes = [line for line in result.output.splitlines() if line.startswith("rc=")]
    assert len(codes) == 4, result.output
    assert codes.count("rc=0") <= 1, result.output  # 2.8 GB held before; now the OOM killer stops the rest
    assert (await sandbox.execute("echo alive")).output == "alive\n"
    await backend.destroy(sandbox.id)


async def test_a_fork_bomb_stays_within_the_sandbox_pids_limit(
    base_dir: Path, mode: str, make_backend: BackendFactory
) -> None:
    need_cgroup("pids")
    backend = make_backend(base_dir, mode, max_processes=48, wall_time_seconds=20)
    sandbox = await backend.create("bomb")
    result = await sandbox.execute("bomb() { bomb | bomb & }; bomb; sleep 2; echo survived", timeout=4)
    assert result.exit_code in (0, 137), result
    pids = sandbox._cgroups.v1_dirs.get("pids") if sandbox._cgroups else None  # type: ignore[union-attr]
    if pids is not None and (pids / "pids.peak").exists():
        assert int((pids / "pids.peak").read_text()) <= 48
    # The sandbox works again at once. Without a pid namespace the bomb's killed processes are the host init's
    # zombies until it reaps them (seconds here), still charged to the sandbox's pids limit: the shell's own
    # forks may have to retry meanwhile, and bash says so; nothing else may show.
    after = await sandbox.execute("echo alive")
    assert after.exit_code == 0 and after.output.endswith("alive\n"), after
    notes = after.output.splitlines()[:-1]
    assert all(note.endswith("fork: retry: Resource temporarily unavailable") for note in notes), after
    await backend.destroy(sandbox.id)


async def test_five_100_mib_files_do_not_pass_the_disk_quota(
    base_dir: Path, mode: str, make_backend: BackendFactory
) -> None:
    quota = 200 * MIB
    backend = make_backend(base_dir, mode, disk_bytes=quota, max_file_bytes=150 * MIB, wall_time_seconds=60)
    sandbox = await backend.create("disk")
    result = await sandbox.execute(
        "for i in 1 2 3 4 5; do head -c 100M /dev/zero | tr '\\0' x > f$i; sleep 1; done; echo wrote all"
    )
    assert "wrote all" not in result.output, result.output
    assert result.over_quota or "File too large" in result.output, result
    used = usage(sandbox.workspace)
    # Killed at a measurement after the quota was passed: within the seconds the files take, even on a loaded
    # machine, so far from all five.
    assert used <= quota + 210 * MIB, used
    with pytest.raises(SandboxLimitError, match="disk quota"):
        await sandbox.write_file("upload.bin", b"y" * (10 * MIB))
    cleaned = await sandbox.execute("rm -f f*; echo cleaned")  # a workspace over its quota can still be cleaned
    assert cleaned.output == "cleaned\n"
    await sandbox.write_file("upload.bin", b"y" * (10 * MIB))
    await backend.destroy(sandbox.id)


def test_cgroups_that_cannot_be_made_are_left_out_not_fatal(tmp_path: Path) -> None:
    """A hierarchy that refuses (here: one that does not exist) leaves commands running without cgroups."""
    refused = cgroups.CgroupSupport(v1={"pids": tmp_path / "absent" / "pids"}, notes=("test",))
    probed = cgroups.probe(refused)
    assert not probed.limits and not probed.kills
    assert "making a cgroup failed" in probed.notes[-1]


async def test_uploads_past_the_quota_are_refused_with_413(tmp_path: Path) -> None:
    async with sandbox_server(reachable_dir("runplane-sec-quota-"), SANDBOX_DISK_BYTES=str(600 * KIB)) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as client:
            alice = await register_user(client)
            _, sid = await new_sandbox(client, alice)
            codes = []
            for i in range(4):  # 4 x 200 KiB against 600 KiB
                response = await client.post(
                    f"/api/sandboxes/{sid}/files",
                    files={"file": (f"f{i}.bin", b"z" * (200 * KIB))},
                    data={"path": f"f{i}.bin"},
                    headers=alice.headers,
                )
                codes.append(response.status_code)
            assert codes[:2] == [200, 200] and codes[-1] == 413, codes
            assert "disk quota" in response.json()["detail"]
            both = await client.post(  # one upload of two files that fit alone but not together: neither is written
                f"/api/sandboxes/{sid}/files",
                files=[("file", ("g1.bin", b"z" * (100 * KIB))), ("file", ("g2.bin", b"z" * (200 * KIB)))],
                data={"path": ["g1.bin", "g2.bin"]},
                headers=alice.headers,
            )
            assert both.status_code == 413, both.text
            listed = (await client.get(f"/api/sandboxes/{sid}/files", headers=alice.headers)).json()["files"]
            assert not {"g1.bin", "g2.bin"} & {f["name"] for f in listed}
            ran = await execute(client, alice, sid, "head -c 300K /dev/zero > big.bin; echo $?")
            assert "File size limit exceeded" in ran["output"], ran  # RLIMIT_FSIZE: what is left of the quota


async def test_a_sandbox_cgroup_removed_by_another_process_is_made_again(
    base_dir: Path, mode: str, make_backend: BackendFactory
) -> None:
    """API and worker processes share base_dir: one's shutdown removes the (empty) cgroups the other uses."""
    need_cgroup("pids")
    backend = make_backend(base_dir, mode)
    sandbox = await backend.create("shared")
    assert (await sandbox.execute("echo one")).output == "one\n"
    make_backend(base_dir, mode).get("shared").remove_cgroups(wait=False)  # as another process's destroy would
    assert (await sandbox.execute("echo two")).output == "two\n"
    await backend.destroy(sandbox.id)
