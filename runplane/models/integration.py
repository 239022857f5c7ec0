"""Integrations: users' Composio profiles (toolkit, tools, MCP server) and sent emails."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise import fields

from runplane.models.base import TimestampedModel
from runplane.models.choices import EmailStatus
from runplane.models.user import User


class IntegrationProfile(TimestampedModel):
    """A user's credential profile for one Composio toolkit: its connection, enabled tools and MCP URL."""

    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="integration_profiles", on_delete=fields.CASCADE
    )
    owner_id: uuid.UUID  # the column Tortoise fills from `owner`, declared for type checkers
    profile_name = fields.CharField(max_length=100)
    display_name = fields.CharField(max_length=200, default="")
    toolkit_slug = fields.CharField(max_length=100)
    toolkit_name = fields.CharField(max_length=200, default="")
    auth_config_id = fields.CharField(max_length=200, null=True)
    connected_account_id = fields.CharField(max_length=200, null=True, db_index=True)
    redirect_url = fields.TextField(null=True)
    mcp_server_id = fields.CharField(max_length=200, null=True)
    mcp_url = fields.TextField(null=True)
    config: fields.JSONField[dict[str, Any]] = fields.JSONField(default=dict)
    enabled_tools: fields.JSONField[list[str]] = fields.JSONField(default=list)
    is_default = fields.BooleanField(default=False)
    is_dashboard_default = fields.BooleanField(default=False)
    is_active = fields.BooleanField(default=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "integration_profiles"
        unique_together = (("owner_id", "profile_name"),)
        indexes = (("owner_id", "toolkit_slug"),)


class EmailDelivery(TimestampedModel):
    """An email of one kind sent to a user (welcome...), kept so it is sent once."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="email_deliveries", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID  # the column Tortoise fills from `user`, declared for type checkers
    kind = fields.CharField(max_length=32)
    recipient = fields.CharField(max_length=320)
    status = fields.CharField(max_length=16, default=EmailStatus.SENDING)
    sent_at = fields.DatetimeField(null=True)
    send_count = fields.IntField(default=0)

    class Meta:
        table = "email_deliveries"
        unique_together = (("user_id", "kind"),)
