"""Projects: owned by one user; everything else hangs off them."""

from __future__ import annotations

import uuid

from runplane.auth.abilities import PROJECTS_READ, PROJECTS_WRITE
from runplane.errors import NotFound
from runplane.models import Project
from runplane.resolvers.context import RequestContext
from runplane.resolvers.pagination import Page, paginate
from runplane.resolvers.validation import clean_limit, clean_text, parse_uuid

MAX_NAME, MAX_DESCRIPTION = 200, 10_000


async def owned_project(ctx: RequestContext, project_id: object, *, ability: str = PROJECTS_READ) -> Project:
    """The caller's project, or NotFound (also for another user's project: ids are not enumerable)."""
    user_id = ctx.require(ability)
    project = await Project.get_or_none(id=parse_uuid(project_id, "Project"), owner_id=user_id)
    if project is None:
        raise NotFound("Project not found")
    return project


async def list_projects(ctx: RequestContext, *, first: object = None, after: str | None = None) -> Page[Project]:
    user_id = ctx.require(PROJECTS_READ)
    return await paginate(Project.filter(owner_id=user_id), first=clean_limit(first), after=after)


async def create_project(ctx: RequestContext, *, name: object, description: object = None) -> Project:
    user_id = ctx.require(PROJECTS_WRITE)
    return await Project.create(
        owner_id=user_id,
        name=clean_text(name, "name", max_length=MAX_NAME),
        description=clean_text(description, "description", max_length=MAX_DESCRIPTION, required=False),
    )


async def update_project(
    ctx: RequestContext, *, project_id: object, name: object = None, description: object = None
) -> Project:
    project = await owned_project(ctx, project_id, ability=PROJECTS_WRITE)
    if name is not None:
        project.name = clean_text(name, "name", max_length=MAX_NAME)
    if description is not None:
        project.description = clean_text(description, "description", max_length=MAX_DESCRIPTION, required=False)
    await project.save()
    return project


async def delete_project(ctx: RequestContext, *, project_id: object) -> uuid.UUID:
    project = await owned_project(ctx, project_id, ability=PROJECTS_WRITE)
    await project.delete()
    return project.id


async def projects_by_ids(ctx: RequestContext, ids: list[uuid.UUID]) -> list[Project | None]:
    """Batch for loaders: the caller's projects for these ids, None where not found or not theirs."""
    user_id = ctx.require(PROJECTS_READ)
    rows = {p.id: p for p in await Project.filter(id__in=set(ids), owner_id=user_id)}
    return [rows.get(i) for i in ids]
