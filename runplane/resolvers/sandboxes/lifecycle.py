"""A project's sandbox: ownership (another user's sandbox is NotFound), creation, deletion."""

from __future__ import annotations

import uuid

from runplane.auth.abilities import PROJECTS_READ, SANDBOX_EXEC
from runplane.errors import NotFound
from runplane.models import Sandbox
from runplane.resolvers.context import RequestContext
from runplane.resolvers.projects import owned_project
from runplane.resolvers.validation import RawId, parse_uuid
from runplane.sandboxes import (
    SandboxHandle,
    service,
)


async def owned_sandbox(ctx: RequestContext, sandbox_id: RawId, *, ability: str = PROJECTS_READ) -> Sandbox:
    user_id = ctx.require(ability)
    row = await Sandbox.get_or_none(id=parse_uuid(sandbox_id, "Sandbox"), owner_id=user_id)
    if row is None:
        raise NotFound("Sandbox not found")
    return row


async def open_sandbox(ctx: RequestContext, sandbox_id: RawId, *, write: bool = False) -> tuple[Sandbox, SandboxHandle]:
    """The caller's sandbox and its handle; writers wake a stopped sandbox."""
    row = await owned_sandbox(ctx, sandbox_id, ability=SANDBOX_EXEC if write else PROJECTS_READ)
    if write:
        row = await service.wake(ctx.services.sandboxes, row)
    return row, await ctx.services.sandboxes.open(str(row.id))


async def ensure_sandbox(ctx: RequestContext, *, project_id: RawId) -> Sandbox:
    """Create or wake the project's sandbox; concurrent calls get the same one."""
    ctx.require(SANDBOX_EXEC)
    project = await owned_project(ctx, project_id)
    return await service.ensure_for_project(ctx.services.sandboxes, project)


async def project_sandbox(ctx: RequestContext, *, project_id: RawId) -> Sandbox | None:
    project = await owned_project(ctx, project_id)
    return await Sandbox.get_or_none(project_id=project.id)


async def sandboxes_of_projects(ctx: RequestContext, project_ids: list[uuid.UUID]) -> dict[uuid.UUID, Sandbox]:
    """Each project's sandbox, if it has one: one query for a page of projects (owner re-checked in it)."""
    user_id = ctx.require(PROJECTS_READ)
    rows = await Sandbox.filter(project_id__in=project_ids, owner_id=user_id)
    return {row.project_id: row for row in rows}


async def delete_sandbox(ctx: RequestContext, *, sandbox_id: RawId) -> uuid.UUID:
    """Stop everything it runs and remove its files; the project gets a fresh one on the next ensure."""
    row = await owned_sandbox(ctx, sandbox_id, ability=SANDBOX_EXEC)
    await ctx.services.sandboxes.destroy(str(row.id))
    await row.delete()
    return row.id


async def isolated(ctx: RequestContext) -> bool:
    return (await ctx.services.sandboxes.backend.isolation()).available
