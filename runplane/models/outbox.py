"""The run queue's truth in the database: the outbox of runs to hand to the job queue, the lease that lets
one process drain it, and the workers' health beats. Redis (arq) is only the fast path between them."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from runplane.models.agent_run import AgentRun


class RunOutbox(Model):
    """A run to push to the job queue (deleted once arq has it).

    Written in the transaction that inserts the run; the row's absence means "sent". Rows left behind (Redis
    was down) are pushed by the outbox relay; a job Redis lost after it was sent is pushed again by the reaper
    (runplane/agents/reaper.py). arq's job id is the run id: a second push of a job arq still holds is a no-op."""

    id = fields.BigIntField(primary_key=True)
    run: fields.ForeignKeyRelation[AgentRun] = fields.ForeignKeyField(
        "runplane.AgentRun", related_name="outbox", on_delete=fields.CASCADE, unique=True
    )
    run_id: uuid.UUID  # the column Tortoise fills from `run`, declared for type checkers
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    attempts = fields.IntField(default=0)

    class Meta:
        table = "run_outbox"


class ProcessLease(Model):
    """A named job only one process at a time does (the outbox relay).

    Held until `expires_at`, renewed by its holder; a dead holder's lease runs out by itself."""

    name = fields.CharField(max_length=64, primary_key=True)
    holder = fields.CharField(max_length=200)
    expires_at = fields.DatetimeField()

    class Meta:
        table = "process_leases"


class WorkerBeat(Model):
    """A `runplane worker`'s health (last queue poll, runs executing).

    Written every few seconds, shown by /api/health/deep; rows of workers silent for long are removed."""

    worker_id = fields.CharField(max_length=200, primary_key=True)
    started_at = fields.DatetimeField()
    beat_at = fields.DatetimeField(db_index=True)
    last_poll_at = fields.DatetimeField(null=True)
    running = fields.IntField(default=0)
    redis_ok = fields.BooleanField(default=True)

    class Meta:
        table = "worker_beats"
