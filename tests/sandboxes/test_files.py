"""Workspace files: upload, read, list, tree, delete, archives; limits and symlink escapes."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from runplane.sandboxes import (
    LocalSandboxBackend,
    SandboxHandle,
    SandboxInputError,
    SandboxLimitError,
    SandboxNotFoundError,
    SandboxPathError,
)

AS_ROOT = os.geteuid() == 0  # sandboxes get a uid of their own only then

Factory = Callable[..., LocalSandboxBackend]  # the make_backend fixture


async def test_write_read_list_tree_delete(sandbox: SandboxHandle) -> None:
    info = await sandbox.write_file("src/app/main.py", b"print('hi')\n")
    assert (info.path, info.size, info.is_dir) == ("src/app/main.py", 12, False)
    await sandbox.write_file("README.md", b"# readme\n")
    await sandbox.write_file("src/util.py", b"x = 1\n")
    assert await sandbox.read_file("src/app/main.py") == b"print('hi')\n"

    listing = await sandbox.list_files()
    assert [(f.name, f.is_dir) for f in listing] == [("src", True), ("README.md", False)]
    assert [f.path for f in await sandbox.list_files("src")] == ["src/app", "src/util.py"]

    tree = await sandbox.tree()
    assert (tree.entries, tree.truncated) == (5, False)
    src = next(n for n in tree.root.children if n.name == "src")
    assert sorted(c.path for c in src.children) == ["src/app", "src/util.py"]
    assert [c.path for c in src.children[0].children] == ["src/app/main.py"]

    assert await sandbox.delete(["src/app", "README.md", "missing.txt"]) == ["src/app", "README.md"]
    assert [f.path for f in await sandbox.list_files()] == ["src"]
    with pytest.raises(SandboxNotFoundError):
        await sandbox.read_file("README.md")


async def test_tree_is_breadth_first_and_bounded(sandbox: SandboxHandle) -> None:
    for i in range(30):
        await sandbox.write_file(f"node_modules/pkg{i}/index.js", b"")
    await sandbox.write_file("zz_last.txt", b"")
    tree = await sandbox.tree(max_entries=10)
    assert tree.truncated and tree.entries == 10
    assert {c.name for c in tree.root.children} == {"node_modules", "zz_last.txt"}


async def test_uploaded_files_belong_to_the_sandbox_uid(sandbox: SandboxHandle) -> None:
    await sandbox.write_file("a/b/c.txt", b"x")
    if not AS_ROOT:
        pytest.skip("sandboxes have their own uid only when the control plane runs as root")
    assert sandbox.owner is not None
    for rel in ("a", "a/b", "a/b/c.txt"):
        assert os.lstat(sandbox.workspace / rel).st_uid == sandbox.owner[0]
    # ... so a command can change what was uploaded
    result = await sandbox.execute("echo more >> a/b/c.txt && mkdir a/b/d && cat a/b/c.txt")
    assert result.exit_code == 0, result.output
    assert result.output == "xmore\n"


async def test_upload_and_read_size_limits(base_dir: Path, make_backend: Factory) -> None:
    backend = make_backend(base_dir, "plain", max_upload_bytes=1000, max_file_bytes=2000)
    sandbox = await backend.create("limits")
    with pytest.raises(SandboxLimitError):
        await sandbox.write_file("big.bin", b"x" * 1001)
    await sandbox.write_file("ok.bin", b"x" * 1000)
    (sandbox.workspace / "huge.bin").write_bytes(b"y" * 2001)  # e.g. produced by a command
    with pytest.raises(SandboxLimitError):
        await sandbox.read_file("huge.bin")
    assert len(await sandbox.read_file("ok.bin")) == 1000
    await backend.destroy("limits")


async def test_bad_paths_are_refused(sandbox: SandboxHandle) -> None:
    for bad in ["../escape.txt", "/etc/passwd", "a/../../x", "nul\x00byte"]:
        with pytest.raises(SandboxPathError):
            await sandbox.write_file(bad, b"x")
        with pytest.raises(SandboxPathError):
            await sandbox.read_file(bad)
    with pytest.raises(SandboxPathError):
        await sandbox.delete(["."])
    with pytest.raises(SandboxPathError):
        await sandbox.list_files("../")
    with pytest.raises(SandboxInputError):
        await sandbox.read_file(".")  # a directory


async def test_symlinks_out_of_the_workspace_are_never_followed(sandbox: SandboxHandle) -> None:
    # A command plants links to outside files; the control plane must not read through them.
    result = await sandbox.execute("ln -s /etc/passwd passwd_link && ln -s /etc etc_link && ln -s ../.. up")
    assert result.exit_code == 0, result.output
    for bad in ["passwd_link", "etc_link/hostname", "up/sandbox.json"]:
        with pytest.raises(SandboxPathError):
            await sandbox.read_file(bad)
        with pytest.raises(SandboxPathError):
            await sandbox.write_file(bad, b"overwrite")
    listing = {f.name: f for f in await sandbox.list_files()}
    assert listing["etc_link"].is_symlink and not listing["etc_link"].is_dir
    # deleting a link removes the link, not its target
    assert await sandbox.delete(["etc_link", "passwd_link"]) == ["etc_link", "passwd_link"]
    assert Path("/etc/passwd").exists()


async def test_links_inside_the_workspace_work(sandbox: SandboxHandle) -> None:
    await sandbox.write_file("real/file.txt", b"content")
    os.symlink("real", sandbox.workspace / "alias")
    assert await sandbox.read_file("alias/file.txt") == b"content"


async def _archive(sandbox: SandboxHandle, fmt: str) -> bytes:
    return b"".join([chunk async for chunk in sandbox.archive(fmt)])  # type: ignore[arg-type]


async def _fill_for_archive(sandbox: SandboxHandle) -> None:
    await sandbox.write_file("src/main.py", b"print(1)\n")
    await sandbox.write_file("data/blob.bin", bytes(range(256)) * 100)
    await sandbox.write_file("empty/.keep", b"")
    os.symlink("/etc/passwd", sandbox.workspace / "leak")
    os.symlink("src/main.py", sandbox.workspace / "main_link")


async def test_tar_gz_archive(sandbox: SandboxHandle) -> None:
    await _fill_for_archive(sandbox)
    with tarfile.open(fileobj=io.BytesIO(await _archive(sandbox, "tar.gz")), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        main, blob = tar.extractfile("src/main.py"), tar.extractfile("data/blob.bin")
        assert main is not None and main.read() == b"print(1)\n"
        assert blob is not None and blob.read() == bytes(range(256)) * 100
    assert members["src"].isdir() and members["empty/.keep"].isfile()
    # links are stored as links: the outside file's content is not in the archive
    assert members["leak"].issym() and members["leak"].linkname == "/etc/passwd"
    assert members["main_link"].issym()


async def test_zip_archive(sandbox: SandboxHandle) -> None:
    await _fill_for_archive(sandbox)
    with zipfile.ZipFile(io.BytesIO(await _archive(sandbox, "zip"))) as zf:
        assert zf.testzip() is None
        assert zf.read("src/main.py") == b"print(1)\n"
        assert zf.read("data/blob.bin") == bytes(range(256)) * 100
        assert "empty/" in zf.namelist()
        leak = zf.getinfo("leak")
        assert stat.S_ISLNK(leak.external_attr >> 16)
        assert zf.read("leak") == b"/etc/passwd"  # the link target, not the file
    with pytest.raises(SandboxInputError):
        await _archive(sandbox, "rar")
