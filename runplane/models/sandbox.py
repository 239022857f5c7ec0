"""Project sandboxes: the row that says which sandbox belongs to which project, and whether it runs."""

from __future__ import annotations

import uuid

from tortoise import fields

from runplane.models.base import TimestampedModel
from runplane.models.choices import SandboxStatus
from runplane.models.project import Project
from runplane.models.user import User


class Sandbox(TimestampedModel):
    """A project's sandbox, one per project (the project column is UNIQUE), its files kept by the backend under its
    id."""

    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="sandboxes", on_delete=fields.CASCADE
    )
    owner_id: uuid.UUID  # the column Tortoise fills from `owner`, declared for type checkers
    project: fields.OneToOneRelation[Project] = fields.OneToOneField(
        "runplane.Project", related_name="sandbox", on_delete=fields.CASCADE
    )
    project_id: uuid.UUID  # the column Tortoise fills from `project`, declared for type checkers
    status = fields.CharField(max_length=16, default=SandboxStatus.ACTIVE)
    # Refreshed from the backend's in-memory activity by the idle reaper, so it lags by one sweep.
    last_active_at = fields.DatetimeField()
    stopped_at = fields.DatetimeField(null=True)

    class Meta:
        table = "sandboxes"
        indexes = (("owner_id", "created_at"), ("status", "last_active_at"))
