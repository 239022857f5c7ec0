from __future__ import annotations

import uuid

from tortoise import fields

from runplane.models.base import TimestampedModel


class User(TimestampedModel):
    email = fields.CharField(max_length=320, unique=True, null=True)
    # Null for users provisioned from an external issuer (they never log in with a password).
    password_hash = fields.CharField(max_length=255, null=True)
    # `iss|sub` of an external issuer's token; users are auto-provisioned on first sight.
    external_subject = fields.CharField(max_length=512, unique=True, null=True)
    display_name = fields.CharField(max_length=200, default="")
    is_admin = fields.BooleanField(default=False)

    class Meta:
        table = "users"


class AuthSession(TimestampedModel):
    """A login: the refresh token family it issued, and whether it is still valid."""

    user: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="sessions", on_delete=fields.CASCADE
    )
    user_id: uuid.UUID  # the column Tortoise fills from `user`, declared for type checkers
    refresh_token_hash = fields.CharField(max_length=128, unique=True)
    abilities: fields.JSONField[list[str]] = fields.JSONField(default=list)
    user_agent = fields.CharField(max_length=512, default="")
    ip_address = fields.CharField(max_length=64, default="")
    last_used_at = fields.DatetimeField(auto_now_add=True)
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "auth_sessions"
