from __future__ import annotations

import uuid

from tortoise import fields

from runplane.models.base import TimestampedModel
from runplane.models.project import Project
from runplane.models.user import User


class Thread(TimestampedModel):
    # owner is the project's owner, copied so that owner-scoped queries need no join.
    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="threads", on_delete=fields.CASCADE
    )
    owner_id: uuid.UUID  # the column Tortoise fills from `owner`, declared for type checkers
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "runplane.Project", related_name="threads", on_delete=fields.CASCADE
    )
    project_id: uuid.UUID  # the column Tortoise fills from `project`, declared for type checkers
    title = fields.CharField(max_length=200, default="")
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "threads"
        indexes = (("project_id", "created_at"), ("owner_id", "created_at"))


class Message(TimestampedModel):
    thread: fields.ForeignKeyRelation[Thread] = fields.ForeignKeyField(
        "runplane.Thread", related_name="messages", on_delete=fields.CASCADE
    )
    thread_id: uuid.UUID  # the column Tortoise fills from `thread`, declared for type checkers
    role = fields.CharField(max_length=16)  # user | assistant | system | tool
    content = fields.TextField()

    class Meta:
        table = "messages"
        indexes = (("thread_id", "created_at"),)
