from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("runplane", "0002_agent_runs")]

    initial = False

    operations = [
        ops.CreateModel(
            name="CheckoutSession",
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
                        related_name="checkout_sessions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("provider", fields.CharField(max_length=16)),
                ("external_id", fields.CharField(max_length=200)),
                ("plan", fields.CharField(max_length=64)),
                ("url", fields.TextField(unique=False)),
                ("expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "billing_checkout_sessions",
                "app": "runplane",
                "unique_together": (("provider", "external_id"),),
                "indexes": [Index(fields=["user_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "A hosted checkout opened with a payment provider for a user and a plan.",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="ProcessedWebhook",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("provider", fields.CharField(max_length=16)),
                ("event_id", fields.CharField(max_length=200)),
                ("event_type", fields.CharField(max_length=100)),
                ("outcome", fields.CharField(max_length=32)),
                ("received_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "billing_processed_webhooks",
                "app": "runplane",
                "unique_together": (("provider", "event_id"),),
                "pk_attr": "id",
                "table_description": "A provider event already applied. (provider, event_id) is unique: a redelivery is a no-op.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Subscription",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                (
                    "user",
                    fields.OneToOneField(
                        "runplane.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="subscription",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("plan", fields.CharField(max_length=64)),
                ("status", fields.CharField(default="active", max_length=32)),
                ("provider", fields.CharField(null=True, max_length=16)),
                ("external_id", fields.CharField(null=True, db_index=True, max_length=200)),
                ("customer_id", fields.CharField(null=True, max_length=200)),
                ("current_period_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("current_period_end", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("cancel_at_period_end", fields.BooleanField(default=False)),
                ("tokens_used", fields.BigIntField(default=0)),
                ("last_event_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "billing_subscriptions",
                "app": "runplane",
                "pk_attr": "id",
                "table_description": "A user's plan and current billing period. Created on first use, on the default plan.",
            },
            bases=["TimestampedModel"],
        ),
        ops.CreateModel(
            name="UsageEntry",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "user",
                    fields.ForeignKeyField(
                        "runplane.User",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="usage_entries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("run_id", fields.UUIDField(unique=True)),
                ("model", fields.CharField(max_length=200)),
                ("source", fields.CharField(default="platform", max_length=16)),
                ("prompt_tokens", fields.IntField(default=0)),
                ("completion_tokens", fields.IntField(default=0)),
                ("total_tokens", fields.IntField(default=0)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "billing_usage_entries",
                "app": "runplane",
                "indexes": [Index(fields=["user_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "One run's token usage, written once: run_id is unique, so a retried or raced write cannot charge twice.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="UserModelKey",
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
                        related_name="model_keys",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("provider", fields.CharField(default="openrouter", max_length=32)),
                ("ciphertext", fields.TextField(unique=False)),
                ("hint", fields.CharField(max_length=32)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
                ("last_tested_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_test_status", fields.CharField(null=True, max_length=16)),
            ],
            options={
                "table": "billing_user_model_keys",
                "app": "runplane",
                "unique_together": (("user_id", "provider"),),
                "pk_attr": "id",
                "table_description": "A user's own model-provider key, AES-GCM encrypted. Only the masked hint is ever shown.",
            },
            bases=["TimestampedModel"],
        ),
    ]
