"""The run outbox: how a queued run reaches the job queue even when Redis is away.

With the arq queue, the run's transaction writes an outbox row (`add`). After the commit the request pushes it
to the dispatcher at once (`send_now`, the fast path); if that fails (Redis down) the request still succeeds
and the row stays.
The relay (`OutboxRelay`, in every API process and worker, one of them draining at a time under a database
lease) pushes what is left as soon as Redis answers again. A row is deleted once the dispatcher has the job.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F, Q

from runplane.clock import now
from runplane.models import ProcessLease, RunOutbox
from runplane.periodic import Periodic
from runplane.services import RunDispatcher

log = logging.getLogger("runplane.outbox")
RELAY_LEASE = "outbox-relay"
DRAIN_BATCH = 200
# A row younger than this is the fast path's: the relay leaves it alone (a double push is harmless, only noise).
FAST_PATH_GRACE = timedelta(seconds=1)


async def add(run_id: uuid.UUID) -> None:
    """Inside the run's transaction."""
    await RunOutbox.create(run_id=run_id)


async def send_now(dispatcher: RunDispatcher, run_id: uuid.UUID) -> bool:
    """After the commit: push the run and drop its row. False (the row stays for the relay) when the queue
    cannot take it now; never raises for that, because the run is safely queued in the database."""
    try:
        await dispatcher.submit(run_id)
    except Exception as exc:
        log.warning("run %s stays in the outbox, the job queue is unreachable: %s", run_id, _describe(exc))
        return False
    await RunOutbox.filter(run_id=run_id).delete()
    return True


async def drain_once(dispatcher: RunDispatcher) -> int:
    """Push every row older than the grace period, oldest first; stop at the first failure (the queue is down,
    the next pass tries again). Returns how many were pushed."""
    rows = await RunOutbox.filter(created_at__lt=now() - FAST_PATH_GRACE).order_by("id").limit(DRAIN_BATCH)
    sent = 0
    for row in rows:
        try:
            await dispatcher.submit(row.run_id)
        except Exception:
            await RunOutbox.filter(id=row.id).update(attempts=F("attempts") + 1)
            raise
        await RunOutbox.filter(id=row.id).delete()
        sent += 1
    if sent:
        log.info("outbox relay pushed %d run(s) to the job queue", sent)
    return sent


async def hold_lease(name: str, holder: str, seconds: float) -> bool:
    """Take or renew the named lease for `seconds`. True while this holder has it; a dead holder's lease
    expires by itself. One conditional UPDATE (or the first INSERT), so two processes cannot both win."""
    until = now() + timedelta(seconds=seconds)
    free = Q(holder=holder) | Q(expires_at__lt=now())
    if await ProcessLease.filter(free, name=name).update(holder=holder, expires_at=until):
        return True
    if await ProcessLease.exists(name=name):
        return False
    try:
        await ProcessLease.create(name=name, holder=holder, expires_at=until)
    except IntegrityError:  # another process created it first
        return False
    return True


class OutboxRelay(Periodic):
    """Drains the outbox every `interval` seconds while this process holds the relay lease."""

    def __init__(self, dispatcher: RunDispatcher, holder: str, interval: float) -> None:
        self.dispatcher, self.holder = dispatcher, holder
        self.lease_seconds = max(5.0, interval * 5)
        super().__init__("outbox relay", interval, self.pass_once, log)

    async def pass_once(self) -> int:
        if not await hold_lease(RELAY_LEASE, self.holder, self.lease_seconds):
            return 0
        return await drain_once(self.dispatcher)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
