"""Deployments in GraphQL: deployProject, updateDeployment (mutations) and deploymentStatus (query)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from runplane import models
from runplane.resolvers import deployments as ops
from runplane.schema.common import Node
from runplane.schema.context import context, rctx
from runplane.schema.enums import DeploymentProvider, DeploymentStatus
from runplane.schema.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    QuotaExceededError,
    typed_errors,
)
from runplane.schema.ids import from_global_id, to_global_id


@strawberry.type
class DeploymentEvent:
    status: DeploymentStatus
    message: str
    at: datetime


@strawberry.type
class Deployment(Node):
    project_id: strawberry.ID
    version: int
    provider: DeploymentProvider
    status: DeploymentStatus
    url: str | None
    external_id: str | None
    source_dir: str
    error: str | None
    file_count: int
    created_at: datetime
    updated_at: datetime
    history: list[DeploymentEvent]

    @classmethod
    def from_view(cls, info: strawberry.Info, view: ops.DeploymentView) -> Deployment:
        row = view.deployment
        return cls(
            id=to_global_id("Deployment", row.id),
            project_id=to_global_id("Project", row.project_id),
            version=row.version,
            provider=DeploymentProvider(row.provider),
            status=DeploymentStatus(row.status),
            url=ops.public_url(rctx(info), row, _base_url(info)),
            external_id=row.external_id,
            source_dir=row.source_dir,
            error=row.error,
            file_count=row.file_count,
            created_at=row.created_at,
            updated_at=row.updated_at,
            history=[
                DeploymentEvent(status=DeploymentStatus(e.status), message=e.message, at=e.created_at)
                for e in view.history
            ],
        )


def _base_url(info: strawberry.Info) -> str | None:
    request = context(info).request
    return str(request.base_url) if request is not None else None


@strawberry.type
class DeploymentPayload:
    deployment: Deployment


DeployResult = Annotated[
    DeploymentPayload | InputError | NotFoundError | ConflictError | ForbiddenError | QuotaExceededError,
    strawberry.union("DeployResult"),
]


@strawberry.input
class DeployProjectInput:
    project_id: strawberry.ID
    source_dir: str | None = None
    provider: DeploymentProvider | None = None
    name: str | None = None


@strawberry.input
class UpdateDeploymentInput:
    project_id: strawberry.ID
    source_dir: str | None = None
    name: str | None = None


async def _payload(info: strawberry.Info, row: models.Deployment) -> DeploymentPayload:
    return DeploymentPayload(deployment=Deployment.from_view(info, ops.DeploymentView(row, await ops.history(row))))


@strawberry.type
class DeploymentQueries:
    @strawberry.field(
        description="The project's latest deployment (live: asked of its provider now); null when never deployed."
    )
    async def deployment_status(
        self, info: strawberry.Info, project_id: strawberry.ID, live: bool = False
    ) -> Deployment | None:
        pid = from_global_id(project_id, "Project")
        view = await (ops.live_status if live else ops.deployment_status)(rctx(info), project_id=pid)
        return None if view is None else Deployment.from_view(info, view)


@strawberry.type
class DeploymentMutations:
    @strawberry.mutation(description="Deploy a folder of the project's sandbox (default dist/, build/ or the root).")
    @typed_errors
    async def deploy_project(self, info: strawberry.Info, input: DeployProjectInput) -> DeployResult:
        row = await ops.deploy_project(
            rctx(info),
            project_id=from_global_id(input.project_id, "Project"),
            source_dir=input.source_dir,
            provider=input.provider,
            name=input.name,
        )
        return await _payload(info, row)

    @strawberry.mutation(description="Publish a new version of the project's deployment.")
    @typed_errors
    async def update_deployment(self, info: strawberry.Info, input: UpdateDeploymentInput) -> DeployResult:
        row = await ops.update_deployment(
            rctx(info),
            project_id=from_global_id(input.project_id, "Project"),
            source_dir=input.source_dir,
            name=input.name,
        )
        return await _payload(info, row)
