import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="User",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("email", fields.CharField(null=True, unique=True, max_length=320)),
                ("password_hash", fields.CharField(null=True, max_length=255)),
                ("external_subject", fields.CharField(null=True, unique=True, max_length=512)),
                ("display_name", fields.CharField(default="", max_length=200)),
                ("is_admin", fields.BooleanField(default=False)),
            ],
            options={"table": "users", "app": "runplane", "pk_attr": "id"},
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="AuthSession",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "runplane.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sessions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("refresh_token_hash", fields.CharField(unique=True, max_length=128)),
                (
                    "abilities",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("user_agent", fields.CharField(default="", max_length=512)),
                ("ip_address", fields.CharField(default="", max_length=64)),
                ("last_used_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "auth_sessions",
                "app": "runplane",
                "pk_attr": "id",
                "table_description": "A login: the refresh token family it issued, and whether it is still valid.",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="Project",
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
                        related_name="projects",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                ("description", fields.TextField(default="", unique=False)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "projects",
                "app": "runplane",
                "indexes": [Index(fields=["owner_id", "created_at"])],
                "pk_attr": "id",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="Thread",
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
                        related_name="threads",
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
                        related_name="threads",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("title", fields.CharField(default="", max_length=200)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "threads",
                "app": "runplane",
                "indexes": [Index(fields=["project_id", "created_at"]), Index(fields=["owner_id", "created_at"])],
                "pk_attr": "id",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="Message",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "thread",
                    fields.ForeignKeyField(
                        "runplane.Thread",
                        source_field="thread_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="messages",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("role", fields.CharField(max_length=16)),
                ("content", fields.TextField(unique=False)),
            ],
            options={
                "table": "messages",
                "app": "runplane",
                "indexes": [Index(fields=["thread_id", "created_at"])],
                "pk_attr": "id",
            },
            bases=["TimestampedModel"],
        ),
    ]
