from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("runplane", "0003_billing")]

    initial = False

    operations = [
        ops.CreateModel(
            name="SandboxRecord",
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
                        related_name="sandboxes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "project",
                    fields.OneToOneField(
                        "runplane.Project",
                        source_field="project_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sandbox",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("status", fields.CharField(default="active", max_length=16)),
                ("last_active_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("stopped_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "sandboxes",
                "app": "runplane",
                "indexes": [Index(fields=["owner_id", "created_at"]), Index(fields=["status", "last_active_at"])],
                "pk_attr": "id",
                "table_description": "A project's sandbox, one per project (the project column is UNIQUE), its files kept by the backend under its id.",
            },
            bases=["TimestampedModel"],
        ),
    ]
