from __future__ import annotations

from tortoise import fields

from runplane.models.base import TimestampedModel
from runplane.models.user import User


class Project(TimestampedModel):
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="projects", on_delete=fields.CASCADE
    )
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "projects"
        indexes = (("owner_id", "created_at"),)
