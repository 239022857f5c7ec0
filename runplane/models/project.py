from __future__ import annotations

import uuid

from tortoise import fields

from runplane.models.base import TimestampedModel
from runplane.models.choices import AppType
from runplane.models.user import User


class Project(TimestampedModel):
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="projects", on_delete=fields.CASCADE
    )
    owner_id: uuid.UUID  # the column Tortoise fills from `owner`, declared for type checkers
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    app_type = fields.CharField(max_length=16, default=AppType.WEB)  # models/choices.py AppType
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "projects"
        indexes = (("owner_id", "created_at"),)
