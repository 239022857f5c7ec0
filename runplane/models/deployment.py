"""Deployments: each deploy or update of a project is a row (a version), with its status history."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model

from runplane.models.base import TimestampedModel
from runplane.models.choices import DeploymentStatus
from runplane.models.project import Project
from runplane.models.user import User

DEPLOYMENT_STATUSES: tuple[str, ...] = tuple(DeploymentStatus)
FINAL_STATUSES = frozenset({DeploymentStatus.READY, DeploymentStatus.ERROR, DeploymentStatus.CANCELED})


class Deployment(TimestampedModel):
    """One published version of a project through a provider (local static site or Vercel)."""

    owner: fields.ForeignKeyRelation[User] = fields.ForeignKeyField(
        "runplane.User", related_name="deployments", on_delete=fields.CASCADE
    )
    owner_id: uuid.UUID  # the column Tortoise fills from `owner`, declared for type checkers
    project: fields.ForeignKeyRelation[Project] = fields.ForeignKeyField(
        "runplane.Project", related_name="deployments", on_delete=fields.CASCADE
    )
    project_id: uuid.UUID  # the column Tortoise fills from `project`, declared for type checkers
    version = fields.IntField()
    provider = fields.CharField(max_length=16)  # local | vercel
    status = fields.CharField(max_length=16, default="queued")
    source_dir = fields.CharField(max_length=1024, default="")
    external_id = fields.CharField(max_length=200, null=True)
    url = fields.TextField(null=True)
    error = fields.TextField(null=True)
    file_count = fields.IntField(default=0)
    total_bytes = fields.BigIntField(default=0)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "deployments"
        unique_together = (("project_id", "version"),)
        indexes = (("owner_id", "created_at"),)


class DeploymentEvent(Model):
    """A status a deployment went through, in order (its history)."""

    id = fields.BigIntField(primary_key=True)
    deployment: fields.ForeignKeyRelation[Deployment] = fields.ForeignKeyField(
        "runplane.Deployment", related_name="events", on_delete=fields.CASCADE
    )
    deployment_id: uuid.UUID  # the column Tortoise fills from `deployment`, declared for type checkers
    status = fields.CharField(max_length=16)
    message = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "deployment_events"
        indexes = (("deployment_id", "id"),)
