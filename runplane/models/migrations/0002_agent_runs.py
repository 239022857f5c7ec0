import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("runplane", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AgentRun",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "owner",
                    fields.ForeignKeyField(
                        "runplane.User",
                        source_field="owner_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="agent_runs",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "project",
                    fields.ForeignKeyField(
                        "runplane.Project",
                        source_field="project_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="agent_runs",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "thread",
                    fields.ForeignKeyField(
                        "runplane.Thread",
                        source_field="thread_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="agent_runs",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("active_thread_id", fields.UUIDField(null=True, unique=True)),
                ("status", fields.CharField(default="queued", db_index=True, max_length=16)),
                ("model", fields.CharField(max_length=200)),
                ("prompt", fields.TextField(default="", unique=False)),
                ("idempotency_key", fields.CharField(null=True, max_length=200)),
                ("error", fields.TextField(null=True, unique=False)),
                ("started_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("finished_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("prompt_tokens", fields.IntField(default=0)),
                ("completion_tokens", fields.IntField(default=0)),
                ("total_tokens", fields.IntField(default=0)),
                ("event_count", fields.IntField(default=0)),
                ("stop_requested", fields.BooleanField(default=False)),
                ("worker_id", fields.CharField(null=True, max_length=100)),
                (
                    "lease_expires_at",
                    fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "agent_runs",
                "app": "runplane",
                "unique_together": (("owner_id", "idempotency_key"),),
                "indexes": [Index(fields=["thread_id", "created_at"])],
                "pk_attr": "id",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="CommandRecord",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "run",
                    fields.ForeignKeyField(
                        "runplane.AgentRun",
                        source_field="run_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="commands",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("command", fields.TextField(unique=False)),
                ("exit_code", fields.IntField(null=True)),
                ("duration_ms", fields.IntField(default=0)),
                ("output_bytes", fields.IntField(default=0)),
                ("timed_out", fields.BooleanField(default=False)),
            ],
            options={
                "table": "agent_run_commands",
                "app": "runplane",
                "indexes": [Index(fields=["run_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "A command an agent ran in the sandbox, visible per run.",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="RunEventRecord",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "run",
                    fields.ForeignKeyField(
                        "runplane.AgentRun",
                        source_field="run_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("seq", fields.IntField()),
                ("type", fields.CharField(max_length=32)),
                (
                    "payload",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "agent_run_events",
                "app": "runplane",
                "unique_together": (("run_id", "seq"),),
                "pk_attr": "id",
                "table_description": "One event of a run's log, written once. (run, seq) is unique and seq has no gaps.",
            },
            bases=["Model"],
        ),
    ]
