"""Snapshots: create, list, diff against the live workspace, restore."""

from __future__ import annotations

import os

import pytest

from runplane.sandboxes import (
    SandboxConflictError,
    SandboxHandle,
    SandboxInputError,
    SandboxNotFoundError,
)


async def _seed(sandbox: SandboxHandle) -> None:
    await sandbox.write_file("app.py", b"def main():\n    return 1\n\nprint(main())\n")
    await sandbox.write_file("notes/old.txt", b"remove me\n")
    await sandbox.write_file("logo.png", b"\x89PNG\r\n\x1a\n\x00\x01\x02")
    await sandbox.write_file("same.txt", b"unchanged\n")


async def _change(sandbox: SandboxHandle) -> None:
    result = await sandbox.execute(
        "sed -i 's/return 1/return 2/' app.py && rm notes/old.txt && echo hello > new.txt"
        " && printf '\\x89PNG\\r\\n\\x1a\\n\\x00\\x09' > logo.png && mkdir -p build"
    )
    assert result.exit_code == 0, result.output


async def test_snapshot_diff_and_restore(sandbox: SandboxHandle) -> None:
    await _seed(sandbox)
    info = await sandbox.create_snapshot("before", "initial state")
    assert info.size_bytes > 0 and info.description == "initial state"
    assert [s.id for s in await sandbox.list_snapshots()] == ["before"]
    # kept outside the visible workspace
    assert ".snapshots" not in {f.name for f in await sandbox.list_files()}
    assert (await sandbox.execute("ls -a")).output.split() == [".", "..", "app.py", "logo.png", "notes", "same.txt"]

    assert await sandbox.diff_snapshot("before") == ""
    await _change(sandbox)
    diff = await sandbox.diff_snapshot("before")
    assert "--- a/app.py\n+++ b/app.py\n" in diff
    assert "-    return 1\n+    return 2\n" in diff
    assert "--- a/notes/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-remove me\n" in diff
    assert "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+hello\n" in diff
    assert "Binary files a/logo.png and b/logo.png differ\n" in diff
    assert "same.txt" not in diff
    assert diff.index("app.py") < diff.index("logo.png") < diff.index("new.txt")

    restored = await sandbox.restore_snapshot("before")
    assert restored.id == "before"
    assert await sandbox.read_file("app.py") == b"def main():\n    return 1\n\nprint(main())\n"
    assert await sandbox.read_file("notes/old.txt") == b"remove me\n"
    assert await sandbox.read_file("logo.png") == b"\x89PNG\r\n\x1a\n\x00\x01\x02"
    assert sorted(f.name for f in await sandbox.list_files()) == ["app.py", "logo.png", "notes", "same.txt"]
    assert await sandbox.diff_snapshot("before") == ""
    if sandbox.owner is not None:  # restored files still belong to the sandbox
        assert os.stat(sandbox.workspace / "notes" / "old.txt").st_uid == sandbox.owner[0]
    result = await sandbox.execute("echo edit >> app.py && rm -r notes")
    assert result.exit_code == 0, result.output


async def test_snapshot_keeps_links_as_links(sandbox: SandboxHandle) -> None:
    await sandbox.execute("ln -s /etc/passwd leak && echo x > f")
    await sandbox.create_snapshot("links")
    await sandbox.delete(["leak", "f"])
    await sandbox.restore_snapshot("links")
    assert os.readlink(sandbox.workspace / "leak") == "/etc/passwd"
    await sandbox.execute("ln -sfn /etc/hostname leak")
    diff_after_retarget = await sandbox.diff_snapshot("links")
    assert "-/etc/passwd" in diff_after_retarget and "+/etc/hostname" in diff_after_retarget


async def test_snapshot_errors(sandbox: SandboxHandle) -> None:
    await sandbox.create_snapshot("s1")
    with pytest.raises(SandboxConflictError):
        await sandbox.create_snapshot("s1")
    for bad in ["", "../x", "a/b", ".hidden", "x" * 65]:
        with pytest.raises(SandboxInputError):
            await sandbox.create_snapshot(bad)
    with pytest.raises(SandboxNotFoundError):
        await sandbox.restore_snapshot("missing")
    with pytest.raises(SandboxNotFoundError):
        await sandbox.diff_snapshot("../../etc")
    await sandbox.delete_snapshot("s1")
    assert await sandbox.list_snapshots() == []


async def test_large_diffs_are_bounded(sandbox: SandboxHandle) -> None:
    await sandbox.create_snapshot("empty")
    for i in range(30):
        await sandbox.write_file(f"gen/file{i:02}.txt", ("x" * 80 + "\n").encode() * 1000)
    await sandbox.write_file("huge.txt", b"y\n" * 400_000)
    diff = await sandbox.diff_snapshot("empty")
    assert len(diff) <= sandbox.limits.max_output_bytes + 100
    assert diff.endswith("diff truncated: output limit reached\n")
