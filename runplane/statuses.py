"""A run's status, one list for every layer (models, the engine, events, GraphQL's RunStatus enum, the REST dialect).

queued -> running -> completed | failed | stopped; running <-> paused; queued/paused -> stopped
(agents/lifecycle.py makes each move a conditional UPDATE). A StrEnum, so a member is the very string stored in
the database and sent on the wire: `RunStatus.RUNNING == "running"`."""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def active(self) -> bool:
        return self in ACTIVE_STATUSES

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


# Tuples (not sets): Tortoise's `status__in=` filters take them as they are.
ACTIVE_STATUSES: tuple[RunStatus, ...] = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED)
# A run holding a worker's lease: the executor and the reaper look at these.
EXECUTING_STATUSES: tuple[RunStatus, ...] = (RunStatus.RUNNING, RunStatus.PAUSED)
# A status event with one of these is the last event of a run: readers stop after it.
TERMINAL_STATUSES: tuple[RunStatus, ...] = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.STOPPED)
