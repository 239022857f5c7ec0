"""resolve_in_workspace: every way out of the workspace is refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runplane.sandboxes import SandboxPathError, resolve_in_workspace


@pytest.fixture
def root(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_text("s")
    return ws.resolve()


@pytest.mark.parametrize("user_path", ["", ".", "./", ".//."])
def test_empty_and_dot_mean_root(root: Path, user_path: str) -> None:
    assert resolve_in_workspace(root, user_path) == root


@pytest.mark.parametrize(
    ("user_path", "expected"),
    [
        ("src", "src"),
        ("src/pkg/x.py", "src/pkg/x.py"),
        ("./src//pkg/", "src/pkg"),
        ("src/../src/pkg", "src/pkg"),
        ("new/dir/file", "new/dir/file"),
    ],
)
def test_relative_paths_stay_inside(root: Path, user_path: str, expected: str) -> None:
    assert resolve_in_workspace(root, user_path) == root / expected


@pytest.mark.parametrize(
    "user_path",
    [
        "/etc/passwd",
        "/",
        "..",
        "../outside/secret",
        "src/../../outside",
        "a/b/../../../x",
        "src/pkg/../../..",
    ],
)
def test_absolute_and_dotdot_escapes_refused(root: Path, user_path: str) -> None:
    with pytest.raises(SandboxPathError):
        resolve_in_workspace(root, user_path)


def test_nul_and_overlong_paths_refused(root: Path) -> None:
    for bad in ["a\x00b", "x" * 256, "/".join(["d"] * 3000)]:
        with pytest.raises(SandboxPathError):
            resolve_in_workspace(root, bad)
    assert isinstance(SandboxPathError("x"), ValueError)


def test_symlink_escapes_refused_at_any_component(root: Path) -> None:
    os.symlink("/etc", root / "etc_link")
    os.symlink("../../outside", root / "src" / "up")
    os.symlink(root.parent / "outside" / "secret", root / "secret_link")
    for bad in ["etc_link", "etc_link/passwd", "src/up", "src/up/secret", "secret_link", "src/up/../outside"]:
        with pytest.raises(SandboxPathError):
            resolve_in_workspace(root, bad)


def test_symlinks_inside_the_root_are_followed(root: Path) -> None:
    os.symlink("src/pkg", root / "pkg_link")
    os.symlink(root / "src", root / "abs_inside")
    assert resolve_in_workspace(root, "pkg_link/mod.py") == root / "src/pkg/mod.py"
    assert resolve_in_workspace(root, "abs_inside") == root / "src"
    # kernel semantics: ".." after a symlink is taken from the link's target
    assert resolve_in_workspace(root, "pkg_link/..") == root / "src"


def test_follow_final_false_names_the_link_itself(root: Path) -> None:
    os.symlink("/etc", root / "etc_link")
    assert resolve_in_workspace(root, "etc_link", follow_final=False) == root / "etc_link"
    with pytest.raises(SandboxPathError):
        resolve_in_workspace(root, "etc_link/passwd", follow_final=False)
