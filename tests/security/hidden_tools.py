"""A PATH without some system tools (bwrap, iptables): what a machine that lacks them looks like to
runplane, without uninstalling anything. Each PATH directory is mirrored by symlinks, minus those names."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["path_without"]


def path_without(names: tuple[str, ...], path: str | None = None, root: Path | None = None) -> str:
    """A PATH value of mirror directories holding every executable of `path` except `names`."""
    root = root or Path(tempfile.mkdtemp(prefix="runplane-path-", dir="/tmp"))
    root.mkdir(mode=0o755, exist_ok=True)
    root.chmod(0o755)
    mirrors = []
    for index, directory in enumerate((path or os.environ.get("PATH", "")).split(os.pathsep)):
        if not directory or not os.path.isdir(directory):
            continue
        mirror = root / str(index)
        mirror.mkdir(mode=0o755)
        for entry in os.scandir(directory):
            if entry.name not in names:
                (mirror / entry.name).symlink_to(entry.path)
        mirrors.append(str(mirror))
    return os.pathsep.join(mirrors)
