"""The symlink-swap rename race (a directory exchanged with a symlink out of the workspace), run from inside a
real sandbox command, against every server file operation.

A racer in the sandbox loops renameat2(RENAME_EXCHANGE) between `dist/x` (a real directory) and `dist/x_l`
(a symlink to a directory of the server's holding a root-only secret, standing for /etc or the data dir)
while the server freezes `dist` for a deploy, archives the workspace (tar.gz and zip), snapshots it, diffs
it, downloads and uploads files and lists the tree. os.walk + copy by name leaked /etc/shadow within a few deploys;
through the fd walker, not one byte (nor one name) from outside the workspace may come back.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

import pytest

from runplane.deployments.base import freeze_files
from runplane.sandboxes import SandboxHandle, fdwalk
from runplane.sandboxes.errors import SandboxError
from tests.sandboxes.conftest import backend, base_dir, make_backend, mode, sandbox  # noqa: F401 - fixtures

CANARY = b"canary-7d41e0-outside-the-workspace"
OUTSIDE_ONLY = "outside-only-name-5b9"
RACE_LIMIT_SECONDS = 120  # the racer's own bound; tests stop it sooner with the stop file
ROUNDS = 3  # rounds of every operation under the race (a count, not a duration: CI machines are loaded)

# python3 racer.py [dir a b]: swaps dir/a and dir/b until the file `stop` appears in the workspace, then writes
# how many swaps it made to `swaps`; `progress` appears after the first 1,000.
RACER = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
folder, a, b = (sys.argv[1:4] if len(sys.argv) > 3 else ("dist", "x", "x_l"))
stop, out, progress = (os.path.abspath(name) for name in ("stop", "swaps", "progress"))
os.chdir(folder)
end, swaps = time.time() + LIMIT, 0
while time.time() < end and not os.path.exists(stop):
    for _ in range(200):
        if libc.renameat2(-100, a.encode(), -100, b.encode(), 2) == 0:  # RENAME_EXCHANGE
            swaps += 1
    if swaps >= 1000 and not os.path.exists(progress):
        open(progress, "w").close()  # the tests wait for this: the race has really run
open(out, "w").write(str(swaps))
""".replace("LIMIT", str(RACE_LIMIT_SECONDS))


@pytest.fixture(params=["openat2", "nofollow-walk"])
def walker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways of the fd walker: openat2, and the O_NOFOLLOW walk of kernels (or seccomp filters) without it."""
    if request.param == "openat2" and not fdwalk.openat2_available():
        pytest.skip("this kernel has no openat2")
    monkeypatch.setattr(fdwalk, "_openat2_works", request.param == "openat2")
    return str(request.param)


@pytest.fixture
def outside(base_dir: Path) -> Path:  # noqa: F811
    """A directory of the server's next to the workspaces: a secret only root may read, a name only it has."""
    path = base_dir / "outside"
    path.mkdir()
    for name in ("shadow", OUTSIDE_ONLY):
        (path / name).write_bytes(CANARY)
        (path / name).chmod(0o600)
    return path


async def plant(sandbox: SandboxHandle, outside: Path) -> None:  # noqa: F811
    await sandbox.write_file("dist/x/shadow", b"inside")
    await sandbox.write_file("dist/index.html", b"<h1>site</h1>")
    await sandbox.write_file("racer.py", RACER.encode())
    made = await sandbox.execute(f"ln -s {outside} dist/x_l && ls -la dist")
    assert made.exit_code == 0, made


class Probe:
    """Runs one server operation after another while the race lasts; counts what each saw."""

    def __init__(self, sandbox: SandboxHandle, outside: Path) -> None:  # noqa: F811
        self.sandbox, self.outside, self.runs = sandbox, outside, Counter[str]()
        self.scratch = Path(tempfile.mkdtemp(prefix="runplane-race-"))

    def clean(self, data: bytes | str, what: str) -> None:
        raw = data.encode() if isinstance(data, str) else data
        assert CANARY not in raw and OUTSIDE_ONLY.encode() not in raw, f"{what} leaked outside data"
        self.runs[what] += 1

    async def deploy(self) -> None:
        dest = self.scratch / f"copy-{self.runs['deploy']}"
        files = await asyncio.to_thread(
            freeze_files,
            self.sandbox.workspace,
            ("dist",),
            dest,
            owner=self.sandbox.owner,
            max_files=100,
            max_bytes=10**6,
        )
        self.clean(b"".join(f.source.read_bytes() + f.path.encode() for f in files), "deploy")
        shutil.rmtree(dest)

    async def archive(self, fmt: str) -> None:
        data = b"".join([chunk async for chunk in self.sandbox.archive(fmt)])  # type: ignore[arg-type]
        if fmt == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                data = b"".join(zf.read(n) + n.encode() for n in zf.namelist())
        else:
            data = gzip.decompress(data)
        self.clean(data, f"archive {fmt}")

    async def snapshot(self) -> None:
        snapshot_id = f"race-{self.runs['snapshot']}"
        await self.sandbox.create_snapshot(snapshot_id)
        tar = self.sandbox.directory / ".snapshots" / f"{snapshot_id}.tar.gz"
        self.clean(gzip.decompress(tar.read_bytes()), "snapshot")
        self.clean(await self.sandbox.diff_snapshot(snapshot_id), "diff")
        await self.sandbox.delete_snapshot(snapshot_id)

    async def download(self) -> None:
        for path in ("dist/x/shadow", "dist/x_l/shadow", f"dist/x/{OUTSIDE_ONLY}"):
            try:
                self.clean(await self.sandbox.read_file(path), "download")
            except SandboxError:
                self.runs["download refused"] += 1

    async def upload(self) -> None:
        """Writes through the swapping directory land inside or are refused; never in the outside directory."""
        for path in ("dist/x/up.txt", "dist/x_l/up.txt"):
            try:
                await self.sandbox.write_file(path, b"uploaded")
            except SandboxError:
                pass
        assert not (self.outside / "up.txt").exists(), "an upload was written outside the workspace"
        self.runs["upload"] += 1

    async def tree(self) -> None:
        for path in (".", "dist/x", "dist/x_l"):
            try:
                listing = repr(await self.sandbox.tree(path)) + repr(await self.sandbox.list_files(path))
            except SandboxError:
                continue
            self.clean(listing, "tree")

    async def round(self) -> None:
        await self.deploy()
        await self.archive("tar.gz")
        await self.archive("zip")
        await self.snapshot()
        await self.download()
        await self.upload()
        await self.tree()


async def test_rename_race_never_leaks_outside_bytes(sandbox: SandboxHandle, outside: Path, walker: str) -> None:  # noqa: F811
    await plant(sandbox, outside)
    probe = Probe(sandbox, outside)
    racer = asyncio.create_task(sandbox.execute("python3 racer.py", timeout=RACE_LIMIT_SECONDS + 30))
    try:
        await wait_for_racer(sandbox, racer)
        rounds = 0
        while rounds < ROUNDS or not (sandbox.workspace / "progress").exists():  # both, however loaded CI is
            assert not racer.done(), f"the racer ended before the rounds did: {racer.result()}"
            await probe.round()
            rounds += 1
    finally:
        await sandbox.write_file("stop", b"")
        shutil.rmtree(probe.scratch, ignore_errors=True)
    result = await racer
    assert result.exit_code == 0, result
    swaps = int(await sandbox.read_file("swaps"))
    assert swaps >= 1000, f"the racer swapped only {swaps} times: the race did not really run"
    for op in ("deploy", "archive tar.gz", "archive zip", "snapshot", "diff", "upload", "tree"):
        assert probe.runs[op] >= ROUNDS, probe.runs


async def wait_for_racer(sandbox: SandboxHandle, racer: asyncio.Task[object]) -> None:  # noqa: F811
    """The racer is swapping once dist/x's inode changes place (a condition, not a sleep)."""
    deadline = time.monotonic() + 30
    first = os.lstat(sandbox.workspace / "dist" / "x").st_ino
    while time.monotonic() < deadline and not racer.done():
        try:
            if os.lstat(sandbox.workspace / "dist" / "x").st_ino != first:
                return
        except FileNotFoundError:
            pass
        await asyncio.sleep(0.01)
    raise AssertionError(f"the racer never started swapping: {racer.result() if racer.done() else 'running'}")


@pytest.mark.skipif(os.geteuid() != 0, reason="hard links to others' files and device nodes need root to plant")
async def test_fifos_devices_and_foreign_hardlinks_are_skipped_never_read(
    sandbox: SandboxHandle,  # noqa: F811
    outside: Path,
) -> None:
    """A FIFO (made inside the sandbox) would block a reader, /dev/zero would never end, a hard link to a
    root-only file (what /etc/shadow is where protected_hardlinks is off) would leak it: every operation
    skips them, promptly."""
    await sandbox.write_file("dist/index.html", b"<h1>site</h1>")
    made = await sandbox.execute("mkfifo dist/pipe && ln dist/index.html dist/own-link")
    assert made.exit_code == 0, made
    dist = sandbox.workspace / "dist"
    os.link(outside / "shadow", dist / "hard")
    os.mknod(dist / "zero", 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    probe = Probe(sandbox, outside)
    try:
        async with asyncio.timeout(60):  # nothing may block on the FIFO or read /dev/zero forever
            await probe.round()
            dest = probe.scratch / "frozen"
            files = await asyncio.to_thread(
                freeze_files, sandbox.workspace, ("dist",), dest, owner=sandbox.owner, max_files=9, max_bytes=10**6
            )
    finally:
        shutil.rmtree(probe.scratch, ignore_errors=True)
    frozen = {f.path for f in files}  # (the probe's uploads are there too)
    assert {"index.html", "own-link"} <= frozen  # the sandbox's own hard link is fine
    assert not frozen & {"pipe", "hard", "zero"}
    for name in ("pipe", "hard", "zero"):
        with pytest.raises(SandboxError):
            await sandbox.read_file(f"dist/{name}")


@pytest.mark.skipif(os.geteuid() != 0, reason="the chdir happens as root only when runplane runs as root")
async def test_a_commands_cwd_is_entered_as_the_sandbox_not_as_root(sandbox: SandboxHandle, base_dir: Path) -> None:  # noqa: F811
    """Without bubblewrap, subprocess's own chdir ran as root before the uid drop: a `cwd` swapped for a link into
    a directory the sandbox uid cannot reach (below a 0700 parent) put the command inside it."""
    hidden = base_dir / "root-only"
    (hidden / "inner").mkdir(parents=True)
    hidden.chmod(0o700)
    (hidden / "inner").chmod(0o755)
    (hidden / "inner" / "secret").write_bytes(CANARY)
    (hidden / "inner" / "secret").chmod(0o644)  # readable once inside: only the 0700 parent keeps it out
    await sandbox.write_file("sub/secret", b"inside")
    assert (await sandbox.execute(f"ln -s {hidden / 'inner'} sub_l")).exit_code == 0
    assert CANARY not in (await sandbox.execute("cat sub_l/secret")).output.encode()  # the uid alone cannot
    await sandbox.write_file("racer.py", RACER.encode())
    racer = asyncio.create_task(sandbox.execute("python3 racer.py . sub sub_l", timeout=RACE_LIMIT_SECONDS + 30))
    tries = 0
    try:
        while tries < 20:  # the old code ran inside it within a few tries
            assert not racer.done(), "the racer ended early"
            try:
                result = await sandbox.execute("cat secret", cwd="sub")
            except SandboxError:
                continue  # cwd was the link at the check: refused
            tries += 1
            assert CANARY not in result.output.encode(), f"try {tries}: the command ran inside the root-only directory"
    finally:
        await sandbox.write_file("stop", b"")
    assert (await racer).exit_code == 0
