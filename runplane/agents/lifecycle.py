"""Run state transitions shared by the executor, the reaper and the resolvers.

queued -> running -> completed | failed | stopped; running <-> paused; queued/paused -> stopped.
Every transition is a conditional UPDATE, so two processes racing for the same run cannot both win,
and the status event is written in the same transaction as the status (readers rely on that).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from tortoise.transactions import in_transaction

from runplane.billing.ledger import charge_run
from runplane.clock import now
from runplane.events.log import append_event
from runplane.events.types import ControlSignal, RunEventMessage
from runplane.models import AgentRun
from runplane.services import Services
from runplane.statuses import ACTIVE_STATUSES, RunStatus


async def transition(
    run_id: uuid.UUID,
    *,
    from_statuses: tuple[RunStatus, ...],
    to: RunStatus,
    payload: dict[str, Any] | None = None,
    error: str | None = None,
    **fields: Any,
) -> list[RunEventMessage]:
    """Move the run to `to` if it is in one of `from_statuses`. Returns the events written (an error
    event, if any, then the status event), or [] if the run was not in such a status."""
    async with in_transaction():
        return await _transition_rows(run_id, from_statuses, to, payload, error, fields)


async def _transition_rows(
    run_id: uuid.UUID,
    from_statuses: tuple[RunStatus, ...],
    to: RunStatus,
    payload: dict[str, Any] | None,
    error: str | None,
    fields: dict[str, Any],
) -> list[RunEventMessage]:
    """`transition`'s writes, inside the caller's transaction."""
    if to not in ACTIVE_STATUSES:
        fields = {**fields, "active_thread_id": None, "completed_at": now(), "lease_expires_at": None, "error": error}
    updated = await AgentRun.filter(id=run_id, status__in=from_statuses).update(status=to, **fields)
    if not updated:
        return []
    events = [await append_event(run_id, "error", {"error": error})] if error else []
    status_payload = {"status": to, **({"error": error} if error else {}), **(payload or {})}
    events.append(await append_event(run_id, "status", status_payload))
    return events


async def claim(run_id: uuid.UUID, worker_id: str, lease_seconds: int) -> list[RunEventMessage]:
    return await transition(
        run_id,
        from_statuses=(RunStatus.QUEUED,),
        to=RunStatus.RUNNING,
        worker_id=worker_id,
        started_at=now(),
        lease_expires_at=now() + timedelta(seconds=lease_seconds),
    )


async def finish(
    services: Services,
    run_id: uuid.UUID,
    status: RunStatus,
    *,
    error: str | None = None,
    from_statuses: tuple[RunStatus, ...] = ACTIVE_STATUSES,
    **fields: Any,
) -> bool:
    """End an active run: (error event,) terminal status event, then END_STREAM/ERROR on the control channel.

    The charge for the tokens used and the terminal status are written in ONE transaction: a crash between
    them can leave neither a charged run that is still active nor an ended run that was never charged. A
    run someone else ended already (the reaper raced a slow worker) is still charged once, for the tokens it
    really used (the ledger is keyed by run id). Events go out after the commit."""
    async with in_transaction():
        # The charge first: it locks the owner's subscription row before the run's row, the order start_run
        # takes them in (subscription, then the thread's one active run). The other order deadlocks on
        # PostgreSQL: a start holding the subscription waits for this run to free its thread, while this
        # finish, holding the run, waits for the subscription.
        await charge_run(services.settings, run_id, **fields)
        events = await _transition_rows(run_id, from_statuses, status, None, error, fields)
    await publish_all(services, events)
    if not events:
        return False
    signal = ControlSignal.ERROR if status == RunStatus.FAILED else ControlSignal.END_STREAM
    await services.event_bus.publish_control(str(run_id), signal, {"status": status})
    return True


async def publish_all(services: Services, events: list[RunEventMessage]) -> None:
    for event in events:
        await services.event_bus.publish(event)


async def emit(services: Services, run_id: uuid.UUID, type: str, payload: dict[str, Any]) -> RunEventMessage:
    """Log first, then publish: a reader that misses the live message finds the event in the log."""
    event = await append_event(run_id, type, payload)
    await services.event_bus.publish(event)
    return event
