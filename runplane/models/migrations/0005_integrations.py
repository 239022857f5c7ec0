import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("runplane", "0004_sandboxes")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Deployment",
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
                        related_name="deployments",
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
                        related_name="deployments",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("version", fields.IntField()),
                ("provider", fields.CharField(max_length=16)),
                ("status", fields.CharField(default="queued", max_length=16)),
                ("source_dir", fields.CharField(default="", max_length=1024)),
                ("external_id", fields.CharField(null=True, max_length=200)),
                ("url", fields.TextField(null=True, unique=False)),
                ("error", fields.TextField(null=True, unique=False)),
                ("file_count", fields.IntField(default=0)),
                ("total_bytes", fields.BigIntField(default=0)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "deployments",
                "app": "runplane",
                "unique_together": (("project_id", "version"),),
                "indexes": [Index(fields=["owner_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "One published version of a project through a provider (local static site or Vercel).",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="DeploymentEvent",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "deployment",
                    fields.ForeignKeyField(
                        "runplane.Deployment",
                        source_field="deployment_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("status", fields.CharField(max_length=16)),
                ("message", fields.TextField(default="", unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "deployment_events",
                "app": "runplane",
                "indexes": [Index(fields=["deployment_id", "id"])],
                "pk_attr": "id",
                "table_description": "A status a deployment went through, in order (its history).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="EmailDelivery",
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
                        related_name="email_deliveries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("kind", fields.CharField(max_length=32)),
                ("recipient", fields.CharField(max_length=320)),
                ("status", fields.CharField(default="sending", max_length=16)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("send_count", fields.IntField(default=0)),
            ],
            options={
                "table": "email_deliveries",
                "app": "runplane",
                "unique_together": (("user_id", "kind"),),
                "pk_attr": "id",
                "table_description": "An email of one kind sent to a user (welcome...), kept so it is sent once.",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="IntegrationProfile",
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
                        related_name="integration_profiles",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("profile_name", fields.CharField(max_length=100)),
                ("display_name", fields.CharField(default="", max_length=200)),
                ("toolkit_slug", fields.CharField(max_length=100)),
                ("toolkit_name", fields.CharField(default="", max_length=200)),
                ("auth_config_id", fields.CharField(null=True, max_length=200)),
                ("connected_account_id", fields.CharField(null=True, db_index=True, max_length=200)),
                ("redirect_url", fields.TextField(null=True, unique=False)),
                ("mcp_server_id", fields.CharField(null=True, max_length=200)),
                ("mcp_url", fields.TextField(null=True, unique=False)),
                (
                    "config",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "enabled_tools",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("is_default", fields.BooleanField(default=False)),
                ("is_dashboard_default", fields.BooleanField(default=False)),
                ("is_active", fields.BooleanField(default=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "integration_profiles",
                "app": "runplane",
                "unique_together": (("owner_id", "profile_name"),),
                "indexes": [Index(fields=["owner_id", "toolkit_slug"])],
                "pk_attr": "id",
                "table_description": "A user's credential profile for one Composio toolkit: its connection, enabled tools and MCP URL.",
            },
            bases=["TimestampedModel"],
        ),
    ]
