"""The fd walker's price: a deploy's frozen copy of a 2k-file tree through runplane/sandboxes/fdwalk.py (openat2, and
the O_NOFOLLOW walk it falls back to) against the plain os.walk + shutil.copyfile copy it replaced (the one the
rename race beat), and the workspace archive (tar.gz) on the same tree. Prints one JSON document; the ratios
compare each to os.walk on the same run.

    python bench/bench_workspace_files.py [--files 2000] [--size 2048] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runplane.sandboxes import fdwalk
from runplane.sandboxes.archive import write_tar
from runplane.sandboxes.freeze import FreezeLimits, freeze_folder


def make_tree(root: Path, files: int, size: int) -> None:
    """`files` files of `size` bytes, 20 per directory, directories 3 deep (like a built site or a src/ tree)."""
    payload = os.urandom(size)
    for i in range(files):
        folder = root / f"d{i // 400}" / f"e{(i // 20) % 20}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i}.js").write_bytes(payload)


def plain_copy(src: Path, dest: Path) -> None:
    """What deploys did before: names from os.walk, copied by name."""
    for current, dirs, names in os.walk(src, followlinks=False):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(current, d))]
        for name in names:
            full = Path(current) / name
            if full.is_file() and not full.is_symlink():
                target = dest / full.relative_to(src)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(full, target, follow_symlinks=False)


def walker_copy(src: Path, dest: Path) -> None:
    freeze_folder(src, (), dest, None, FreezeLimits(max_files=10**6, max_bytes=10**12))


def walker_copy_without_openat2(src: Path, dest: Path) -> None:
    fdwalk._openat2_works = False  # the fallback: O_NOFOLLOW opens, one component at a time
    try:
        walker_copy(src, dest)
    finally:
        fdwalk._openat2_works = None


def archive(src: Path, dest: Path) -> None:
    with open(dest, "wb") as out:
        write_tar(src, None, out)


def timed(variants: dict[str, Callable[[Path], None]], scratch: Path, repeat: int) -> dict[str, dict[str, float]]:
    """Interleaved (each variant once per round), so a busy moment of the machine hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(repeat):
        for name, run in variants.items():
            dest = scratch / f"{name}-{i}"
            started = time.perf_counter()
            run(dest)
            times[name].append((time.perf_counter() - started) * 1000)
            if dest.is_dir():
                shutil.rmtree(dest)
            else:
                dest.unlink(missing_ok=True)
    return {
        name: {"median_ms": round(statistics.median(ms), 2), "min_ms": round(min(ms), 2)} for name, ms in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        src, scratch = Path(tmp) / "ws", Path(tmp) / "scratch"
        make_tree(src, args.files, args.size)
        scratch.mkdir()
        results: dict[str, object] = {"files": args.files, "file_bytes": args.size, "repeat": args.repeat}
        results["openat2"] = fdwalk.openat2_available()
        variants = {
            "os_walk_copy": lambda d: plain_copy(src, d),
            "fdwalk_copy_openat2": lambda d: walker_copy(src, d),
            "fdwalk_copy_nofollow_walk": lambda d: walker_copy_without_openat2(src, d),
            "archive_tar_gz": lambda d: archive(src, d),
        }
        measured = timed(variants, scratch, args.repeat)
        results.update(measured)
        base = measured["os_walk_copy"]["median_ms"]
        for key in ("fdwalk_copy_openat2", "fdwalk_copy_nofollow_walk"):
            results[f"{key}_ratio"] = round(measured[key]["median_ms"] / base, 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
