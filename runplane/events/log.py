"""The durable event log of runs: every event is written here once, with its per-run
sequence number, before it is published on the bus. Readers replay from here."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from runplane.clock import iso_z
from runplane.events.types import RunEventMessage
from runplane.models import AgentRun, RunEvent

REPLAY_PAGE = 500


async def append_event(run_id: uuid.UUID, type: str, payload: dict[str, Any]) -> RunEventMessage:
    """Allocate the next sequence number under the run row's lock and store the event, in one transaction.

    Several writers may append to one run (executor, stop from another process, the reaper):
    the counter update serializes them, and (run, sequence) is unique besides.
    """
    async with in_transaction():
        await AgentRun.filter(id=run_id).update(event_count=F("event_count") + 1)
        sequence = await AgentRun.filter(id=run_id).first().values_list("event_count", flat=True)
        row = await RunEvent.create(run_id=run_id, sequence=sequence, type=type, payload=payload)
    return to_message(row, run_id)


async def replay(run_id: uuid.UUID, after: int, limit: int = REPLAY_PAGE) -> list[RunEventMessage]:
    rows = await RunEvent.filter(run_id=run_id, sequence__gt=after).order_by("sequence").limit(limit)
    return [to_message(row, run_id) for row in rows]


def to_message(row: RunEvent, run_id: uuid.UUID) -> RunEventMessage:
    return RunEventMessage(
        run_id=str(run_id),
        sequence=row.sequence,
        type=row.type,
        payload=dict(row.payload),
        created_at=iso_z(row.created_at),
    )
