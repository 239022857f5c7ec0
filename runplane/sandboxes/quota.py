"""The workspace disk quota (RUNPLANE_SANDBOX_DISK_BYTES), measured rather than trusted.

Usage is what the workspace's files occupy on disk (allocated blocks, so sparse files count for what they
hold and a lying Content-Length counts for nothing), walked without following links. There is no kernel
quota on an ordinary directory, so: file writes and uploads through runplane are refused when they would
pass the quota; a command or session gets RLIMIT_FSIZE no larger than what is left when it starts (no one
file passes the quota), and a watch measures the workspace while it runs and kills it once it has grown
past the quota (several files written at once may overshoot by what is written within one interval).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from runplane.sandboxes import fdwalk

WATCH_INTERVAL = 0.5  # seconds between two measurements while a command runs
COST_SHARE = 20  # the pause after a measurement is at least this many times what it took
UNMEASURABLE = 2**62  # usage of a tree deeper than the fd walker goes


def usage(root: Path) -> int:
    """Bytes allocated to everything under root (root's own entry excluded), through the fd walker: a directory
    swapped for a link to / mid-walk is skipped, not walked (it would make the server walk the host's disk). A
    tree nested deeper than the walker goes counts as over any quota: what lies below the cut is not measured."""
    try:
        root_fd = fdwalk.open_root(root)
    except OSError:
        return 0  # no workspace (yet): nothing to count
    total = 0
    try:
        for entry in fdwalk.walk(root_fd):
            total += entry.st.st_blocks * 512
            if entry.kind == "dir" and entry.depth + 1 >= fdwalk.MAX_DEPTH:
                return UNMEASURABLE
    finally:
        os.close(root_fd)
    return total


async def measure(root: Path) -> int:
    return await asyncio.to_thread(usage, root)


def watch(root: Path, quota: int, start: int, interval: float = WATCH_INTERVAL) -> Callable[[], Awaitable[None]]:
    """A coroutine function that returns once the workspace is over `quota` and has grown since `start` (its
    usage when the command started: a workspace already over it stays usable for cleaning up with `rm`)."""

    async def run() -> None:
        pause = interval
        while True:
            await asyncio.sleep(pause)
            began = time.monotonic()
            now = await measure(root)
            if now > quota and now > start:
                return
            # A big tree (node_modules) under a dev server that runs for hours: walking it at most 1/COST_SHARE
            # of the time keeps the watch's CPU bounded, at the price of a later kill.
            pause = max(interval, (time.monotonic() - began) * COST_SHARE)

    return run
