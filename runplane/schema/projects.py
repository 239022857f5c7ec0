from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from runplane import models
from runplane.resolvers import projects as ops
from runplane.schema.common import Connection, Node
from runplane.schema.connections import RowBacked, connection_from_page, connection_of_page, row_fields
from runplane.schema.context import loaders, rctx
from runplane.schema.enums import AppType
from runplane.schema.errors import ForbiddenError, InputError, NotFoundError, QuotaExceededError, typed_errors
from runplane.schema.ids import from_global_id, to_global_id
from runplane.schema.loaders import child_count, page_key, prefetch_below, resolved
from runplane.schema.threads import Thread


@strawberry.type
class Project(RowBacked, Node):
    name: str
    description: str
    app_type: AppType
    created_at: datetime
    updated_at: datetime
    _row: strawberry.Private[models.Project]

    @classmethod
    def from_row(cls, row: models.Project) -> "Project":
        return cls.lazy(row)

    @strawberry.field(description="The project's threads, newest first.")
    def threads(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Thread]:
        key = page_key(self._row, {"first": first, "after": after, "last": last, "before": before})
        found = loaders(info)
        count = child_count(found, "Project.threads", self._row.id)
        return resolved(found.ThreadsByProjectLoader, key, lambda page: connection_of_page(page, Thread, count))


row_fields(
    Project,
    id=lambda row: to_global_id("Project", row.id),
    name=lambda row: row.name,
    description=lambda row: row.description,
    app_type=lambda row: AppType(row.app_type),
    created_at=lambda row: row.created_at,
    updated_at=lambda row: row.updated_at,
)


@strawberry.type
class ProjectPayload:
    project: Project


@strawberry.type
class DeleteProjectPayload:
    deleted_id: strawberry.ID


CreateProjectResult = Annotated[
    ProjectPayload | InputError | ForbiddenError | QuotaExceededError, strawberry.union("CreateProjectResult")
]
UpdateProjectResult = Annotated[
    ProjectPayload | InputError | NotFoundError | ForbiddenError, strawberry.union("UpdateProjectResult")
]
DeleteProjectResult = Annotated[
    DeleteProjectPayload | NotFoundError | ForbiddenError, strawberry.union("DeleteProjectResult")
]


@strawberry.input
class CreateProjectInput:
    name: str
    description: str | None = None
    app_type: AppType | None = strawberry.field(default=None, description="web (the default) or mobile (Expo)")


@strawberry.input
class UpdateProjectInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None


@strawberry.type
class ProjectQueries:
    @strawberry.field
    async def project(self, info: strawberry.Info, id: strawberry.ID) -> Project | None:
        row = await ops.owned_project(rctx(info), from_global_id(id, "Project"))
        await prefetch_below(info, [row], "Project", connection=False)
        return Project.from_row(row)

    @strawberry.field(description="The caller's projects, newest first.")
    async def projects(
        self,
        info: strawberry.Info,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Project]:
        page = await ops.list_projects(rctx(info), first=first, after=after, last=last, before=before)
        await prefetch_below(info, page.items, "Project", connection=True)
        return connection_from_page(page, Project.from_row)


@strawberry.type
class ProjectMutations:
    @strawberry.mutation
    @typed_errors
    async def create_project(self, info: strawberry.Info, input: CreateProjectInput) -> CreateProjectResult:
        row = await ops.create_project(
            rctx(info), name=input.name, description=input.description, app_type=input.app_type
        )
        return ProjectPayload(project=Project.from_row(row))

    @strawberry.mutation
    @typed_errors
    async def update_project(self, info: strawberry.Info, input: UpdateProjectInput) -> UpdateProjectResult:
        row = await ops.update_project(
            rctx(info), project_id=from_global_id(input.id, "Project"), name=input.name, description=input.description
        )
        return ProjectPayload(project=Project.from_row(row))

    @strawberry.mutation
    @typed_errors
    async def delete_project(self, info: strawberry.Info, id: strawberry.ID) -> DeleteProjectResult:
        deleted = await ops.delete_project(rctx(info), project_id=from_global_id(id, "Project"))
        return DeleteProjectPayload(deleted_id=to_global_id("Project", deleted))
