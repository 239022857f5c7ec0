"""runplane/periodic.py: a failing pass is one warning line (type and message), the traceback only at DEBUG,
and the loop goes on until stopped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runplane.periodic import Periodic


async def test_failing_passes_log_one_line_each_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    passes: list[int] = []

    async def step() -> None:
        passes.append(len(passes))
        if len(passes) <= 2:
            raise ConnectionRefusedError(111, "Connect call failed")

    logger = logging.getLogger("runplane.test_periodic")
    caplog.set_level(logging.DEBUG, logger.name)
    task = Periodic("probe", 0.01, step, logger)
    task.start()
    for _ in range(300):
        if len(passes) >= 4:
            break
        await asyncio.sleep(0.01)
    await task.stop()
    assert len(passes) >= 4
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == ["probe pass failed: ConnectionRefusedError: [Errno 111] Connect call failed"] * 2
    assert all(r.exc_info is None for r in warnings)
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(debug) == 2 and all(r.exc_info for r in debug)


async def test_stop_before_start_and_twice_is_harmless() -> None:
    async def step() -> None:
        raise AssertionError("never runs: the interval is long")

    task = Periodic("idle", 3600, step)
    await task.stop()
    task.start()
    await task.stop()
    await task.stop()
