"""A background pass every few seconds, for the life of a process (the run reaper, the sandbox reaper)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("runplane.periodic")


async def run_periodically(name: str, interval: float, step: Callable[[], Awaitable[object]], logger: logging.Logger = log) -> None:
    """Sleep `interval`, run `step`, forever. A failing pass must not end the loop, and during an outage
    (the database down for minutes) each pass fails alike: one warning line each, the traceback at DEBUG."""
    while True:
        await asyncio.sleep(interval)
        try:
            await step()
        except Exception as exc:
            logger.warning("%s pass failed: %s: %s", name, type(exc).__name__, exc)
            logger.debug("%s pass failed", name, exc_info=True)


class Periodic:
    """`run_periodically` as a task that start() begins and stop() cancels."""

    def __init__(self, name: str, interval: float, step: Callable[[], Awaitable[object]], logger: logging.Logger = log) -> None:
        self.name, self.interval, self.step, self.logger = name, interval, step, logger
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        loop = run_periodically(self.name, self.interval, self.step, self.logger)
        self._task = asyncio.create_task(loop, name=f"runplane-{self.name.replace(' ', '-')}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
