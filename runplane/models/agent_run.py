"""Agent runs and their event log."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise import fields
from tortoise.models import Model

from runplane.models.base import TimestampedModel
from runplane.models.project import Project
from runplane.models.thread import Thread
from runplane.models.user import User
from runplane.statuses import ACTIVE_STATUSES as ACTIVE_STATUSES
from runplane.statuses import TERMINAL_STATUSES as TERMINAL_STATUSES
from runplane.statuses import RunStatus


class AgentRun(TimestampedModel):
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="agent_runs", on_delete=fields.CASCADE
    )
    owner_id: uuid.UUID  # the column Tortoise fills from `owner`, declared for type checkers
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "runplane.Project", related_name="agent_runs", on_delete=fields.CASCADE
    )
    project_id: uuid.UUID  # the column Tortoise fills from `project`, declared for type checkers
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "runplane.Thread", related_name="agent_runs", on_delete=fields.CASCADE
    )
    thread_id: uuid.UUID  # the column Tortoise fills from `thread`, declared for type checkers
    # The thread's id while the run is active, NULL once it ends. UNIQUE, so the database itself
    # refuses a second active run on a thread (NULLs do not collide in SQLite or PostgreSQL).
    active_thread_id = fields.UUIDField(null=True, unique=True)
    status = fields.CharField(max_length=16, default=RunStatus.QUEUED.value, db_index=True)  # a RunStatus
    model = fields.CharField(max_length=200)
    prompt = fields.TextField(default="")
    idempotency_key = fields.CharField(max_length=200, null=True)
    error = fields.TextField(null=True)
    started_at = fields.DatetimeField(null=True)
    completed_at = fields.DatetimeField(null=True)
    prompt_tokens = fields.IntField(default=0)
    completion_tokens = fields.IntField(default=0)
    total_tokens = fields.IntField(default=0)
    # Events written so far: the next event's sequence is this + 1 (incremented under the row lock).
    event_count = fields.IntField(default=0)
    stop_requested = fields.BooleanField(default=False)
    # Lease of the worker executing the run; the reaper fails runs whose lease ran out.
    worker_id = fields.CharField(max_length=100, null=True)
    lease_expires_at = fields.DatetimeField(null=True, db_index=True)
    # The abilities of the token that started the run: its agent may use only the tools they allow
    # (agents/tools.py). Null on runs started before runs recorded them: every user ability.
    abilities: fields.JSONField[list[str]] | None = fields.JSONField(null=True)

    class Meta:
        table = "agent_runs"
        unique_together = (("owner_id", "idempotency_key"),)
        indexes = (("thread_id", "created_at"),)


class RunEvent(Model):
    """One event of a run's log, written once. (run, sequence) is unique and sequence has no gaps."""

    id = fields.BigIntField(primary_key=True)
    run: fields.ForeignKeyRelation[AgentRun] = fields.ForeignKeyField(
        "runplane.AgentRun", related_name="events", on_delete=fields.CASCADE
    )
    run_id: uuid.UUID  # the column Tortoise fills from `run`, declared for type checkers
    sequence = fields.IntField()
    type = fields.CharField(max_length=32)
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "agent_run_events"
        unique_together = (("run_id", "sequence"),)


class RunCommand(TimestampedModel):
    """A command an agent ran in the sandbox, visible per run."""

    run: fields.ForeignKeyRelation[AgentRun] = fields.ForeignKeyField(
        "runplane.AgentRun", related_name="commands", on_delete=fields.CASCADE
    )
    run_id: uuid.UUID  # the column Tortoise fills from `run`, declared for type checkers
    command = fields.TextField()
    exit_code = fields.IntField(null=True)
    duration_ms = fields.IntField(default=0)
    output_bytes = fields.IntField(default=0)
    timed_out = fields.BooleanField(default=False)

    class Meta:
        table = "agent_run_commands"
        indexes = (("run_id", "created_at"),)
