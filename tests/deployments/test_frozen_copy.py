"""The frozen copy a deploy publishes (deployments/base.py, sandboxes/freeze.py): limits counted on the bytes
copied, tool folders skipped, and copies of killed deploys cleaned up."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from runplane.deployments.base import STAGING_PREFIX, freeze_files, staging_dir
from runplane.errors import PayloadTooLarge


def test_copies_regular_files_and_skips_tool_folders_and_links(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for name in ("dist/index.html", "dist/a/b.js", "dist/node_modules/x.js", "dist/.git/config"):
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(name)
    os.symlink("/etc/passwd", ws / "dist" / "passwd")
    files = freeze_files(ws, ("dist",), tmp_path / "copy", owner=None, max_files=10, max_bytes=1000)
    assert sorted(f.path for f in files) == ["a/b.js", "index.html"]
    assert all(f.source.read_text() == f"dist/{f.path}" and f.size == len(f"dist/{f.path}") for f in files)
    assert (tmp_path / "copy").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(("max_files", "max_bytes"), [(1, 1000), (10, 5)])
def test_limits_refuse_with_413(tmp_path: Path, max_files: int, max_bytes: int) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a").write_text("abcd")
    (ws / "b").write_text("efgh")
    with pytest.raises(PayloadTooLarge):
        freeze_files(ws, (), tmp_path / "copy", owner=None, max_files=max_files, max_bytes=max_bytes)


def test_copies_of_killed_deploys_are_removed_once_stale(tmp_path: Path) -> None:
    sites = tmp_path / "sites"
    stale, recent = sites / f"{STAGING_PREFIX}old", sites / f"{STAGING_PREFIX}running"
    for path in (stale, recent):
        (path / "copy").mkdir(parents=True)
    hour_ago = time.time() - 7200
    os.utime(stale, (hour_ago, hour_ago))
    made = staging_dir(sites)
    assert made.is_dir() and made.name.startswith(STAGING_PREFIX) and made.stat().st_mode & 0o777 == 0o700
    assert not stale.exists() and recent.exists()
