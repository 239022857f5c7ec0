from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("runplane", "0005_integrations")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ProcessLease",
            fields=[
                ("name", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ("holder", fields.CharField(max_length=200)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "process_leases",
                "app": "runplane",
                "pk_attr": "name",
                "table_description": "A named job only one process at a time does (the outbox relay).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RunOutbox",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "run",
                    fields.ForeignKeyField(
                        "runplane.AgentRun",
                        source_field="run_id",
                        unique=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="outbox",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
                ("attempts", fields.IntField(default=0)),
            ],
            options={
                "table": "run_outbox",
                "app": "runplane",
                "pk_attr": "id",
                "table_description": "A run to push to the job queue (deleted once arq has it).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WorkerBeat",
            fields=[
                ("worker_id", fields.CharField(primary_key=True, unique=True, db_index=True, max_length=200)),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("beat_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("last_poll_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("running", fields.IntField(default=0)),
                ("redis_ok", fields.BooleanField(default=True)),
            ],
            options={
                "table": "worker_beats",
                "app": "runplane",
                "pk_attr": "worker_id",
                "table_description": "A `runplane worker`'s health (last queue poll, runs executing).",
            },
            bases=["Model"],
        ),
    ]
