"""A background pass every few seconds, for the life of a process (the run reaper, the sandbox reaper)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("runplane.periodic")


async def run_periodically(
    name: str, interval: float, step: Callable[[], Awaitable[object]], logger: logging.Logger = log
) -> None:
    """Sleep `interval`, run `step`, forever. A failing pass must not end the loop. A new failure is logged with
    its traceback (it may be a bug); during an outage (the database down for minutes) every pass fails alike,
    and a repeat of the last failure is one warning line (its traceback at DEBUG)."""
    last_failure: str | None = None
    while True:
        await asyncio.sleep(interval)
        try:
            await step()
        except Exception as exc:
            failure = f"{type(exc).__name__}: {exc}"
            if failure == last_failure:
                logger.warning("%s pass failed again: %s", name, failure)
                logger.debug("%s pass failed", name, exc_info=True)
            else:
                logger.warning("%s pass failed: %s", name, failure, exc_info=True)
            last_failure = failure
        else:
            last_failure = None


class Periodic:
    """`run_periodically` as a task that start() begins and stop() cancels."""

    def __init__(
        self, name: str, interval: float, step: Callable[[], Awaitable[object]], logger: logging.Logger = log
    ) -> None:
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
