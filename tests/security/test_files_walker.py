"""runplane/sandboxes/fdwalk.py, the one fd walker, in both of its ways: openat2 (RESOLVE_BENEATH |
RESOLVE_NO_SYMLINKS) and the O_NOFOLLOW walk used where the kernel or a seccomp filter lacks openat2."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from runplane.sandboxes import fdwalk, quota


@pytest.fixture(params=["openat2", "nofollow-walk"])
def way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "openat2" and not fdwalk.openat2_available():
        pytest.skip("this kernel has no openat2")
    monkeypatch.setattr(fdwalk, "_openat2_works", True if request.param == "openat2" else False)
    return str(request.param)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    root, outside = tmp_path / "ws", tmp_path / "outside"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("inside")
    outside.mkdir()
    (outside / "secret").write_text("outside")
    os.symlink(outside, root / "a" / "out")  # a directory link leaving the tree
    os.symlink("b", root / "a" / "in")  # one staying inside: refused all the same
    os.symlink(outside / "secret", root / "a" / "b" / "link.txt")
    fd = fdwalk.open_root(root)
    yield root, fd
    os.close(fd)


def test_plain_components_open(way: str, tree: tuple[Path, int]) -> None:
    _, root_fd = tree
    fd = fdwalk.open_beneath(root_fd, ("a", "b", "f.txt"), os.O_RDONLY)
    with open(fd, "rb") as f:
        assert f.read() == b"inside"


@pytest.mark.parametrize(
    "parts", [("a", "out", "secret"), ("a", "in", "f.txt"), ("a", "b", "link.txt"), ("a", "out"), ("a", "in")]
)
def test_no_symlink_is_followed_on_any_component(way: str, tree: tuple[Path, int], parts: tuple[str, ...]) -> None:
    _, root_fd = tree
    with pytest.raises(OSError) as refused:
        os.close(fdwalk.open_beneath(root_fd, parts, os.O_RDONLY))
    assert refused.value.errno in (errno.ELOOP, errno.ENOTDIR, errno.EXDEV)


@pytest.mark.parametrize("parts", [("..", "outside"), ("a", "..", "..", "outside"), ("/etc",), ("a/b",), ("",)])
def test_dot_dot_absolute_and_joined_components_are_refused(
    way: str, tree: tuple[Path, int], parts: tuple[str, ...]
) -> None:
    _, root_fd = tree
    with pytest.raises(OSError) as refused:
        os.close(fdwalk.open_beneath(root_fd, parts, os.O_RDONLY))
    assert refused.value.errno == errno.EINVAL


def test_a_fifo_is_not_read_and_does_not_block(way: str, tree: tuple[Path, int]) -> None:
    root, root_fd = tree
    os.mkfifo(root / "a" / "pipe")
    assert fdwalk.open_regular(root_fd, ("a", "pipe"), None) is None  # O_NONBLOCK: no writer needed
    assert fdwalk.open_regular(root_fd, ("a", "b", "link.txt"), None) is None
    opened = fdwalk.open_regular(root_fd, ("a", "b", "f.txt"), None)
    assert opened is not None and stat.S_ISREG(opened[1].st_mode)
    os.close(opened[0])


@pytest.mark.skipif(os.geteuid() != 0, reason="a foreign owner needs root to set up")
def test_a_hard_link_to_someone_elses_file_is_unreadable(way: str, tree: tuple[Path, int]) -> None:
    root, root_fd = tree
    os.link(root.parent / "outside" / "secret", root / "a" / "hard")  # root's file, linked into the sandbox's tree
    assert fdwalk.open_regular(root_fd, ("a", "hard"), (300_123, 300_123)) is None
    own = root / "a" / "b" / "f.txt"
    os.chown(own, 300_123, 300_123)
    os.link(own, root / "a" / "own-hard")  # the sandbox's own file under two names is fine
    opened = fdwalk.open_regular(root_fd, ("a", "own-hard"), (300_123, 300_123))
    assert opened is not None
    os.close(opened[0])


def test_walk_lists_links_without_entering_them(way: str, tree: tuple[Path, int]) -> None:
    _, root_fd = tree
    kinds = {e.path: e.kind for e in fdwalk.walk(root_fd)}
    assert kinds == {
        "a": "dir",
        "a/b": "dir",
        "a/in": "link",
        "a/out": "link",
        "a/b/f.txt": "file",
        "a/b/link.txt": "link",
    }


def test_a_directory_swapped_for_a_link_after_listing_is_not_entered(way: str, tree: tuple[Path, int]) -> None:
    """The race, frozen at its worst moment: listed as a directory, a symlink by the time it is opened."""
    root, root_fd = tree
    listed = next(e for e in fdwalk.walk(root_fd) if e.path == "a")
    os.rename(root / "a", root / "a-moved")
    os.symlink(root.parent / "outside", root / "a")
    assert fdwalk._reopen(root_fd, ("a",), (listed.st.st_ino, listed.st.st_dev)) is None
    assert [e.path for e in fdwalk.walk(root_fd)] == [
        "a",
        "a-moved",
        "a-moved/b",
        "a-moved/in",
        "a-moved/out",
        "a-moved/b/f.txt",
        "a-moved/b/link.txt",
    ]
    # A regular file replaced by another after listing is not read under the listed name either.
    for entry in fdwalk.walk(root_fd):
        if entry.path == "a-moved/b/f.txt":
            os.rename(root / "a-moved" / "b" / "f.txt", root / "a-moved" / "b" / "old")
            (root / "a-moved" / "b" / "f.txt").write_text("new")
            assert entry.open(None) is None


def test_a_deep_tree_holds_one_directory_fd_at_a_time(way: str, tmp_path: Path) -> None:
    """A hostile tree 200 levels deep with names of 200 bytes (past PATH_MAX as one string) is walked whole, and
    the walk never holds more than a couple of fds (a few concurrent archives must not exhaust the server's)."""
    parts = ["d" * 200] * 200
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    for part in parts:
        os.mkdir(part, dir_fd=fd)
        next_fd = os.open(part, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = next_fd
    os.close(fd)
    root_fd = fdwalk.open_root(tmp_path)
    before = len(os.listdir("/proc/self/fd"))
    most = 0
    try:
        count = 0
        for _ in fdwalk.walk(root_fd):
            count += 1
            most = max(most, len(os.listdir("/proc/self/fd")) - before)
    finally:
        os.close(root_fd)
    assert count == 200 and most <= 2


def test_the_walk_is_cut_at_max_depth(way: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fdwalk, "MAX_DEPTH", 3)
    (tmp_path / "1" / "2" / "3" / "4").mkdir(parents=True)
    fd = fdwalk.open_root(tmp_path)
    try:
        assert [e.path for e in fdwalk.walk(fd)] == ["1", "1/2", "1/2/3"]
    finally:
        os.close(fd)


def test_the_disk_quota_walk_follows_no_link_and_counts_a_too_deep_tree_as_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """quota.usage runs on every command start: a link to / (or one swapped in mid-walk) would make the server walk
    the host's whole disk; what the walker cannot reach must not escape the quota either."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "f").write_bytes(b"x" * 8192)
    alone = quota.usage(root)
    os.symlink("/", root / "everything")
    assert alone >= 8192 and quota.usage(root) - alone < 64 * 1024  # the link's own entry, not /
    monkeypatch.setattr(fdwalk, "MAX_DEPTH", 4)
    (root / "1" / "2" / "3" / "4").mkdir(parents=True)
    assert quota.usage(root) == quota.UNMEASURABLE
    assert quota.usage(tmp_path / "missing") == 0
