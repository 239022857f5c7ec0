"""Fixtures: real backends in a temp base dir, in both isolation modes where possible."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from runplane.sandboxes import LocalSandboxBackend, SandboxHandle, SandboxLimits, netns
from runplane.sandboxes.isolation import detect_isolation

AS_ROOT = os.geteuid() == 0
# Test sandboxes get uids of their own range, apart from any real deployment's on this machine, and apart from
# other test processes' (xdist workers, other checkouts): a uid is claimed per base_dir, and a new sandbox's
# create kills whatever still runs as its uid, so two processes sharing a range kill each other's commands.
_FIRST_UID = 1_100_000 + random.randrange(0, 4000) * 500
TEST_UIDS = range(_FIRST_UID, _FIRST_UID + 500)


@pytest.fixture
def base_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: /tmp/pytest-of-root is 0700, so sandbox uids could not reach it.
    path = Path(tempfile.mkdtemp(prefix="runplane-sbx-test-", dir="/tmp"))
    path.chmod(0o711)
    yield path
    netns.unmount_under(path)  # namespaces of sandboxes a failed test did not destroy
    shutil.rmtree(path, ignore_errors=True)


async def bwrap_works(base: Path) -> bool:
    owner = (TEST_UIDS[0], TEST_UIDS[0]) if AS_ROOT else None
    return (await detect_isolation(base, owner)).available


@pytest.fixture(params=["bwrap", "plain"])
async def mode(request: pytest.FixtureRequest, base_dir: Path) -> str:
    if request.param == "bwrap" and not await bwrap_works(base_dir):
        pytest.skip("bubblewrap does not work on this machine")
    return str(request.param)


BackendFactory = Callable[..., LocalSandboxBackend]


@pytest.fixture
async def make_backend() -> AsyncIterator[BackendFactory]:
    """make_backend(base_dir, mode, **limits): backends are closed (their processes killed)
    at teardown, also when the test failed half-way."""
    made: list[LocalSandboxBackend] = []

    def make(base_dir: Path, mode: str, **limits: Any) -> LocalSandboxBackend:
        limits.setdefault("allow_unisolated", mode == "plain")  # "plain" is the explicit opt-out
        made.append(
            LocalSandboxBackend(base_dir, SandboxLimits(**limits), uid_range=TEST_UIDS, use_bwrap=(mode == "bwrap"))
        )
        return made[-1]

    yield make
    await asyncio.gather(*(b.close() for b in made))
    for backend in made:  # the cgroups of sandboxes a test left (close keeps them for other processes)
        for sandbox in list(backend._sandboxes.values()):
            sandbox.remove_cgroups(wait=False)


@pytest.fixture
def backend(base_dir: Path, mode: str, make_backend: BackendFactory) -> LocalSandboxBackend:
    return make_backend(base_dir, mode, wall_time_seconds=20)


@pytest.fixture
async def sandbox(backend: LocalSandboxBackend) -> AsyncIterator[SandboxHandle]:
    sandbox = await backend.create("sbx-test")
    yield sandbox
    if backend.exists(sandbox.id):
        await backend.destroy(sandbox.id)


@pytest.fixture
def uid_processes() -> Callable[..., list[int]]:
    return processes_of_uid


@pytest.fixture
def survivors() -> Callable[[int], Awaitable[list[int]]]:
    """survivors(uid): live processes of uid still there after up to 3 s. A SIGKILL is queued
    at once, but the process needs a moment to be scheduled and finish dying."""

    async def wait(uid: int) -> list[int]:
        for _ in range(60):
            if not (alive := processes_of_uid(uid)):
                return []
            await asyncio.sleep(0.05)
        return alive

    return wait


def processes_of_uid(uid: int, *, zombies: bool = False) -> list[int]:
    """Pids whose real uid is `uid` (only meaningful when sandboxes have their own uid).

    Zombies are left out unless asked for: a killed process stays one until the init process
    reaps it, and it runs nothing meanwhile.
    """
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and _matches(entry.name, uid, zombies):
            pids.append(int(entry.name))
    return pids


def _matches(pid: str, uid: int, zombies: bool) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return False
    if int(fields.get("Uid", "-1 ").split()[0]) != uid:
        return False
    return zombies or not fields.get("State", "").strip().startswith("Z")
