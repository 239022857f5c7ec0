from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from runplane import models
from runplane.errors import DomainError
from runplane.resolvers import projects as ops
from runplane.resolvers.validation import clean_limit
from runplane.schema.common import Connection, Node
from runplane.schema.connections import connection_from_page, connection_from_rows
from runplane.schema.context import loaders, rctx
from runplane.schema.errors import ForbiddenError, InputError, NotFoundError, error_result
from runplane.schema.ids import from_global_id, to_global_id
from runplane.schema.threads import Thread


@strawberry.type
class Project(Node):
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    _row: strawberry.Private[models.Project]

    @classmethod
    def from_row(cls, row: models.Project) -> "Project":
        return cls(
            id=to_global_id("Project", row.id), name=row.name, description=row.description,
            created_at=row.created_at, updated_at=row.updated_at, _row=row,
        )

    @strawberry.field(description="The project's threads, newest first.")
    async def threads(self, info: strawberry.Info, first: int = 20) -> Connection[Thread]:
        limit = clean_limit(first)
        rows = await loaders(info).ThreadsByProjectLoader.load((self._row.id, limit + 1))
        return connection_from_rows(rows, limit, Thread.from_row)


@strawberry.type
class ProjectPayload:
    project: Project


@strawberry.type
class DeleteProjectPayload:
    deleted_id: strawberry.ID


CreateProjectResult = Annotated[ProjectPayload | InputError | ForbiddenError | QuotaExceededError, strawberry.union("CreateProjectResult")]
UpdateProjectResult = Annotated[ProjectPayload | InputError | NotFoundError | ForbiddenError, strawberry.union("UpdateProjectResult")]
DeleteProjectResult = Annotated[DeleteProjectPayload | NotFoundError | ForbiddenError, strawberry.union("DeleteProjectResult")]


@strawberry.input
class CreateProjectInput:
    name: str
    description: str | None = None


@strawberry.input
class UpdateProjectInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None


@strawberry.type
class ProjectQueries:
    @strawberry.field
    async def project(self, info: strawberry.Info, id: strawberry.ID) -> Project:
        return Project.from_row(await ops.owned_project(rctx(info), from_global_id(id, "Project")))

    @strawberry.field(description="The caller's projects, newest first.")
    async def projects(self, info: strawberry.Info, first: int = 20, after: str | None = None) -> Connection[Project]:
        page = await ops.list_projects(rctx(info), first=first, after=after)
        return connection_from_page(page, Project.from_row)


@strawberry.type
class ProjectMutations:
    @strawberry.mutation
    async def create_project(self, info: strawberry.Info, input: CreateProjectInput) -> CreateProjectResult:
        try:
            row = await ops.create_project(rctx(info), name=input.name, description=input.description)
            return ProjectPayload(project=Project.from_row(row))
        except DomainError as exc:
            return error_result(exc)  # type: ignore[return-value]

    @strawberry.mutation
    async def update_project(self, info: strawberry.Info, input: UpdateProjectInput) -> UpdateProjectResult:
        try:
            row = await ops.update_project(
                rctx(info), project_id=from_global_id(input.id, "Project"), name=input.name, description=input.description
            )
            return ProjectPayload(project=Project.from_row(row))
        except DomainError as exc:
            return error_result(exc)  # type: ignore[return-value]

    @strawberry.mutation
    async def delete_project(self, info: strawberry.Info, id: strawberry.ID) -> DeleteProjectResult:
        try:
            deleted = await ops.delete_project(rctx(info), project_id=from_global_id(id, "Project"))
            return DeleteProjectPayload(deleted_id=to_global_id("Project", deleted))
        except DomainError as exc:
            return error_result(exc)  # type: ignore[return-value]
