"""Billing: one subscription per user, the append-only token ledger, checkouts, processed webhooks, users' own keys."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from runplane.models.base import TimestampedModel
from runplane.models.user import User


class BillingSubscription(TimestampedModel):
    """A user's plan and current billing period. Created on first use, on the default plan."""

    user: fields.OneToOneRelation[User] = fields.OneToOneField(
        "runplane.User", related_name="subscription", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID  # the column Tortoise fills from `user`, declared for type checkers
    plan = fields.CharField(max_length=64)
    status = fields.CharField(max_length=32, default="active")  # active | trialing | past_due
    provider = fields.CharField(max_length=16, null=True)  # polar | stripe, when a payment provider manages it
    external_id = fields.CharField(max_length=200, null=True, db_index=True)
    customer_id = fields.CharField(max_length=200, null=True)
    current_period_start = fields.DatetimeField()
    current_period_end = fields.DatetimeField()
    cancel_at_period_end = fields.BooleanField(default=False)
    # Platform tokens charged in the current period (the ledger holds every entry; this is its running sum).
    tokens_used = fields.BigIntField(default=0)
    # Time of the newest provider event applied: an older event delivered late changes nothing.
    last_event_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "billing_subscriptions"


class UsageEntry(Model):
    """One run's token usage, written once: run_id is unique, so a retried or raced write cannot charge twice."""

    id = fields.BigIntField(primary_key=True)
    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="usage_entries", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID  # the column Tortoise fills from `user`, declared for type checkers
    # No foreign key: deleting a project (and its runs) must not erase what was billed.
    run_id = fields.UUIDField(unique=True)
    model = fields.CharField(max_length=200)
    source = fields.CharField(max_length=16, default="platform")  # platform | byok (the user's own key)
    prompt_tokens = fields.IntField(default=0)
    completion_tokens = fields.IntField(default=0)
    total_tokens = fields.IntField(default=0)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "billing_usage_entries"
        indexes = (("user_id", "created_at"),)


class CheckoutSession(TimestampedModel):
    """A hosted checkout opened with a payment provider for a user and a plan."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="checkout_sessions", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID  # the column Tortoise fills from `user`, declared for type checkers
    provider = fields.CharField(max_length=16)
    external_id = fields.CharField(max_length=200)
    plan = fields.CharField(max_length=64)
    url = fields.TextField()
    expires_at = fields.DatetimeField(null=True)

    class Meta:
        table = "billing_checkout_sessions"
        unique_together = (("provider", "external_id"),)
        indexes = (("user_id", "created_at"),)


class ProcessedWebhook(Model):
    """A provider event already applied. (provider, event_id) is unique: a redelivery is a no-op."""

    id = fields.BigIntField(primary_key=True)
    provider = fields.CharField(max_length=16)
    event_id = fields.CharField(max_length=200)
    event_type = fields.CharField(max_length=100)
    outcome = fields.CharField(max_length=32)
    received_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "billing_processed_webhooks"
        unique_together = (("provider", "event_id"),)


class UserModelKey(TimestampedModel):
    """A user's own model-provider key, AES-GCM encrypted. Only the masked hint is ever shown."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="model_keys", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID  # the column Tortoise fills from `user`, declared for type checkers
    provider = fields.CharField(max_length=32, default="openrouter")
    ciphertext = fields.TextField()
    hint = fields.CharField(max_length=32)
    updated_at = fields.DatetimeField(auto_now=True)
    last_tested_at = fields.DatetimeField(null=True)
    last_test_status = fields.CharField(max_length=16, null=True)  # ok | invalid

    class Meta:
        table = "billing_user_model_keys"
        unique_together = (("user_id", "provider"),)
