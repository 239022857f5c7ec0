"""runplane/periodic.py: a new failure is logged with its traceback, a repeat of it (an outage) is one warning
line with the traceback only at DEBUG, and the loop goes on until stopped."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runplane.periodic import Periodic


async def test_a_new_failure_has_its_traceback_and_repeats_are_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    passes: list[int] = []

    async def step() -> None:
        passes.append(len(passes))
        if len(passes) <= 3:
            raise ConnectionRefusedError(111, "Connect call failed")
        if len(passes) == 5:
            raise KeyError("a bug")

    logger = logging.getLogger("runplane.test_periodic")
    caplog.set_level(logging.DEBUG, logger.name)
    task = Periodic("probe", 0.01, step, logger)
    task.start()
    for _ in range(300):
        if len(passes) >= 6:
            break
        await asyncio.sleep(0.01)
    await task.stop()
    assert len(passes) >= 6
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    refused = "ConnectionRefusedError: [Errno 111] Connect call failed"
    assert [r.getMessage() for r in warnings] == [
        f"probe pass failed: {refused}",
        f"probe pass failed again: {refused}",
        f"probe pass failed again: {refused}",
        "probe pass failed: KeyError: 'a bug'",
    ]
    assert [r.exc_info is not None for r in warnings] == [True, False, False, True]
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
