"""Shared model pieces: UUID primary keys and UTC timestamps."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


# Model docstrings become table comments in the migrations: keep semicolons out of them, Tortoise's
# SQLite migration executor splits statements on ";".
class TimestampedModel(Model):
    id = fields.UUIDField(primary_key=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        abstract = True
