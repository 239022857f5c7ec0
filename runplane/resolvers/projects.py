"""Projects: owned by one user; everything else hangs off them."""

from __future__ import annotations

import uuid

from runplane.auth.abilities import PROJECTS_READ, PROJECTS_WRITE
from runplane.errors import NotFound
from runplane.models import Project
from runplane.models.choices import AppType
from runplane.resolvers import billing
from runplane.resolvers.context import RequestContext
from runplane.resolvers.pagination import Page, page_args, paginate
from runplane.resolvers.validation import RawId, clean_choice, clean_text, parse_uuid

MAX_NAME, MAX_DESCRIPTION = 200, 10_000


async def owned_project(ctx: RequestContext, project_id: RawId, *, ability: str = PROJECTS_READ) -> Project:
    """The caller's project, or NotFound (also for another user's project: ids are not enumerable)."""
    user_id = ctx.require(ability)
    project = await Project.get_or_none(id=parse_uuid(project_id, "Project"), owner_id=user_id)
    if project is None:
        raise NotFound("Project not found")
    return project


async def list_projects(
    ctx: RequestContext,
    *,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[Project]:
    user_id = ctx.require(PROJECTS_READ)
    args = page_args(first=first, after=after, last=last, before=before)
    query = Project.filter(owner_id=user_id)
    return await paginate(query, args)


async def create_project(
    ctx: RequestContext, *, name: str, description: str | None = None, app_type: str | None = None
) -> Project:
    """QuotaExceeded (402) at the plan's max_projects; counted and inserted under the subscription's lock."""
    user_id = ctx.require(PROJECTS_WRITE)
    clean_name = clean_text(name, "name", max_length=MAX_NAME)
    clean_description = clean_text(description, "description", max_length=MAX_DESCRIPTION, required=False)
    clean_app_type = clean_choice(app_type, "app_type", AppType, default=AppType.WEB)
    return await billing.create_within_limit(
        ctx,
        limit="projects",
        count=lambda: count_projects(user_id),
        create=lambda: Project.create(
            owner_id=user_id, name=clean_name, description=clean_description, app_type=clean_app_type
        ),
    )


async def count_projects(user_id: uuid.UUID) -> int:
    return await Project.filter(owner_id=user_id).count()


async def update_project(
    ctx: RequestContext, *, project_id: RawId, name: str | None = None, description: str | None = None
) -> Project:
    project = await owned_project(ctx, project_id, ability=PROJECTS_WRITE)
    if name is not None:
        project.name = clean_text(name, "name", max_length=MAX_NAME)
    if description is not None:
        project.description = clean_text(description, "description", max_length=MAX_DESCRIPTION, required=False)
    await project.save()
    return project


async def delete_project(ctx: RequestContext, *, project_id: RawId) -> uuid.UUID:
    project = await owned_project(ctx, project_id, ability=PROJECTS_WRITE)
    await project.delete()
    return project.id


async def projects_by_ids(ctx: RequestContext, ids: list[uuid.UUID]) -> list[Project | None]:
    """Batch for loaders: the caller's projects for these ids, None where not found or not theirs."""
    user_id = ctx.require(PROJECTS_READ)
    rows = {p.id: p for p in await Project.filter(id__in=set(ids), owner_id=user_id)}
    return [rows.get(i) for i in ids]
