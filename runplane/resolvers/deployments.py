"""Deployments: publish a folder of the project's sandbox through a provider, keep every version and its history.

`deploy_project` makes a project's first deployment, `update_deployment` the next versions (with the same
provider); both record queued -> ready|error (Vercel: building until it is ready). `live_status` asks the
provider again and records any change. Plans limit how many projects may be deployed."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from tortoise.exceptions import IntegrityError

from runplane.auth.abilities import PROJECTS_READ, PROJECTS_WRITE
from runplane.deployments import (
    DeployProviderError,
    ProviderResult,
)
from runplane.deployments.base import PROVIDERS, DeployFile, freeze_files, sites_dir, staging_dir
from runplane.deployments.registry import build_provider
from runplane.errors import Conflict, InvalidInput, NotFound
from runplane.models import Deployment, DeploymentEvent, Project
from runplane.models.choices import DeploymentStatus
from runplane.models.deployment import FINAL_STATUSES
from runplane.origins import public_site_url
from runplane.resolvers import billing
from runplane.resolvers.context import RequestContext
from runplane.resolvers.projects import owned_project
from runplane.resolvers.validation import RawId, clean_text
from runplane.sandboxes import SandboxHandle
from runplane.sandboxes.errors import SandboxError
from runplane.sandboxes.files import Workspace
from runplane.sandboxes.paths import open_dir_beneath

MAX_SITE_NAME, MAX_SOURCE_DIR = 100, 1024

DEFAULT_DIRS = ("dist", "build")
WORKSPACE_PREFIX = "/workspace"


@dataclass
class DeploymentView:
    deployment: Deployment
    history: list[DeploymentEvent]


async def deploy_project(
    ctx: RequestContext,
    *,
    project_id: RawId,
    source_dir: str | None = None,
    provider: str | None = None,
    name: str | None = None,
) -> Deployment:
    """The project's first deployment. The plan's max_deployments caps how many projects are deployed:
    QuotaExceeded (402), checked early and decided where version 1 is inserted, under the subscription's lock."""
    project = await owned_project(ctx, project_id, ability=PROJECTS_WRITE)
    if await Deployment.exists(project_id=project.id):
        raise Conflict("The project is already deployed: update its deployment instead")
    await billing.enforce_limit(ctx, limit="deployments", used=await _deployed_projects(ctx.user_id))
    kind = _provider_kind(ctx, provider)
    return await _publish(ctx, project, kind=kind, source_dir=source_dir, name=name, first=True)


async def update_deployment(
    ctx: RequestContext, *, project_id: RawId, source_dir: str | None = None, name: str | None = None
) -> Deployment:
    project = await owned_project(ctx, project_id, ability=PROJECTS_WRITE)
    latest = await _latest(project.id)
    if latest is None:
        raise NotFound("The project has no deployment yet: deploy it first")
    folder = source_dir if source_dir is not None else (latest.source_dir or None)
    return await _publish(ctx, project, kind=latest.provider, source_dir=folder, name=name)


async def deployment_status(ctx: RequestContext, *, project_id: RawId) -> DeploymentView | None:
    project = await owned_project(ctx, project_id, ability=PROJECTS_READ)
    latest = await _latest(project.id)
    return None if latest is None else DeploymentView(latest, await history(latest))


async def live_status(ctx: RequestContext, *, project_id: RawId) -> DeploymentView | None:
    """Like deployment_status, after asking the provider (a deployment not yet final may have moved on)."""
    project = await owned_project(ctx, project_id, ability=PROJECTS_READ)
    latest = await _latest(project.id)
    if latest is None:
        return None
    provider = build_provider(latest.provider, ctx.settings)
    try:
        result = await provider.refresh(deployment_id=str(latest.id), external_id=latest.external_id)
    finally:
        await provider.aclose()
    await _apply(latest, result)
    return DeploymentView(latest, await history(latest))


async def history(deployment: Deployment) -> list[DeploymentEvent]:
    return await DeploymentEvent.filter(deployment_id=deployment.id).order_by("id")


def public_url(ctx: RequestContext, deployment: Deployment, base_url: str | None) -> str | None:
    """Local sites are stored as a path: made absolute on the untrusted origin (runplane/origins.py), or their own
    host when RUNPLANE_SITES_BASE_URL names one per site."""
    url = deployment.url
    if url and url.startswith("/"):
        return public_site_url(ctx.settings, url, base_url)
    return url


# -- internals ----------------------------------------------------------------------------------
def _provider_kind(ctx: RequestContext, provider: object) -> str:
    if provider is None:
        return ctx.settings.deploy_provider if ctx.settings.deploy_provider in PROVIDERS else "local"
    if not isinstance(provider, str) or provider not in PROVIDERS:
        raise InvalidInput(f"provider must be one of: {', '.join(PROVIDERS)}", field="provider")
    return provider


async def _latest(project_id: uuid.UUID) -> Deployment | None:
    return await Deployment.filter(project_id=project_id).order_by("-version").first()


async def _deployed_projects(user_id: uuid.UUID) -> int:
    return await billing.deployed_projects(user_id)


async def _publish(
    ctx: RequestContext, project: Project, *, kind: str, source_dir: object, name: object, first: bool = False
) -> Deployment:
    site_name = clean_text(name, "name", max_length=MAX_SITE_NAME, required=False) or project.name
    provider = build_provider(kind, ctx.settings)  # 503 before anything is written when it is not configured
    staging = await asyncio.to_thread(staging_dir, sites_dir(ctx.settings))
    try:
        sandbox, parts, folder = await _source_folder(ctx, project, source_dir)
        files = await asyncio.to_thread(_freeze, ctx, sandbox, parts, staging / "copy", folder)
        if not files:
            raise InvalidInput(f"The folder '{folder or '.'}' has no files to deploy", field="source_dir")
        if first:
            row = await _first_version(ctx, project, kind=kind, folder=folder)
        else:
            row = await _new_version(ctx, project, kind=kind, folder=folder)
        row.file_count, row.total_bytes = len(files), sum(f.size for f in files)
        await row.save(update_fields=["file_count", "total_bytes", "updated_at"])
        try:
            result = await provider.deploy(deployment_id=str(row.id), name=site_name, files=files)
        except DeployProviderError as exc:
            await _apply(row, ProviderResult(DeploymentStatus.ERROR, message=exc.message))
            raise
        await _apply(row, result)
        return row
    finally:
        await provider.aclose()
        await asyncio.to_thread(shutil.rmtree, staging, True)


def _freeze(
    ctx: RequestContext, sandbox: SandboxHandle, parts: tuple[str, ...], dest: Path, folder: str
) -> list[DeployFile]:
    settings = ctx.settings
    try:
        return freeze_files(
            sandbox.workspace,
            parts,
            dest,
            owner=sandbox.owner,
            max_files=settings.deploy_max_files,
            max_bytes=settings.deploy_max_bytes,
        )
    except OSError:  # swapped for a link or removed since it was checked
        raise InvalidInput(
            f"source_dir '{folder or '.'}' is not a folder of the project's sandbox", field="source_dir"
        ) from None


async def _source_folder(
    ctx: RequestContext, project: Project, source_dir: object
) -> tuple[SandboxHandle, tuple[str, ...], str]:
    """The sandbox, the folder's components below its workspace, and the folder as named."""
    sandbox = await ctx.services.sandbox_for_project(project.id)
    workspace = Workspace(sandbox.workspace, sandbox.owner)
    if source_dir is None or source_dir == "":
        for candidate in DEFAULT_DIRS:
            if await asyncio.to_thread(_is_dir, workspace, (candidate,)):
                return sandbox, (candidate,), candidate
        return sandbox, (), ""
    text = clean_text(source_dir, "source_dir", max_length=MAX_SOURCE_DIR)
    if text == WORKSPACE_PREFIX or text.startswith(WORKSPACE_PREFIX + "/"):
        text = text[len(WORKSPACE_PREFIX) :].lstrip("/")
    try:
        parts = await asyncio.to_thread(workspace.parts, text)
    except SandboxError as exc:
        raise InvalidInput(f"source_dir: {exc}", field="source_dir") from None
    if not await asyncio.to_thread(_is_dir, workspace, parts):
        raise InvalidInput("source_dir is not a folder of the project's sandbox", field="source_dir")
    return sandbox, parts, text


def _is_dir(workspace: Workspace, parts: tuple[str, ...]) -> bool:
    """A directory reached without following any link (the fd walker)."""
    try:
        os.close(open_dir_beneath(workspace.root, parts))
    except (SandboxError, OSError):
        return False
    return True


async def _first_version(ctx: RequestContext, project: Project, *, kind: str, folder: str) -> Deployment:
    """Version 1, counted against the plan and inserted under the lock of the owner's subscription (the lock
    also makes a concurrent first deploy of the same project see this one: Conflict)."""

    async def create() -> Deployment:
        if await Deployment.exists(project_id=project.id):
            raise Conflict("The project is already deployed: update its deployment instead")
        return await _insert_version(ctx, project, version=1, kind=kind, folder=folder)

    return await billing.create_within_limit(
        ctx, limit="deployments", count=lambda: _deployed_projects(ctx.user_id), create=create
    )


async def _insert_version(ctx: RequestContext, project: Project, *, version: int, kind: str, folder: str) -> Deployment:
    row = await Deployment.create(
        owner_id=ctx.user_id,
        project_id=project.id,
        version=version,
        provider=kind,
        source_dir=folder,
        status=DeploymentStatus.QUEUED,
    )
    await DeploymentEvent.create(
        deployment_id=row.id, status=DeploymentStatus.QUEUED, message=f"deploying '{folder or '.'}' with {kind}"
    )
    return row


async def _new_version(ctx: RequestContext, project: Project, *, kind: str, folder: str) -> Deployment:
    for _ in range(5):  # concurrent deploys of one project race on (project, version)
        latest = await _latest(project.id)
        try:
            return await _insert_version(
                ctx, project, version=(latest.version if latest else 0) + 1, kind=kind, folder=folder
            )
        except IntegrityError:
            continue
    raise Conflict("Another deployment of this project is starting: try again")


async def _apply(row: Deployment, result: ProviderResult) -> None:
    """Record the provider's answer; a new status also goes to the history."""
    changed = result.status != row.status
    row.status = result.status
    row.url = result.url or row.url
    row.external_id = result.external_id or row.external_id
    # Tortoise types a null=True TextField as plain str: None is what the column is declared to hold.
    row.error = result.message if result.status == DeploymentStatus.ERROR else None  # type: ignore[assignment]
    await row.save()
    if changed:
        await DeploymentEvent.create(deployment_id=row.id, status=result.status, message=result.message[:2000])


def is_final(row: Deployment) -> bool:
    return row.status in FINAL_STATUSES


__all__ = [
    "DeploymentView",
    "deploy_project",
    "deployment_status",
    "history",
    "is_final",
    "live_status",
    "public_url",
    "update_deployment",
]
