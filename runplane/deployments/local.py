"""The local static provider: a copy of the folder under sites_dir/<deployment id>, served by runplane."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from runplane.deployments.base import DeployFile, ProviderResult
from runplane.models.choices import DeploymentStatus


class LocalSiteProvider:
    name = "local"

    def __init__(self, sites_dir: Path) -> None:
        self.sites_dir = sites_dir

    async def deploy(self, *, deployment_id: str, name: str, files: list[DeployFile]) -> ProviderResult:
        await asyncio.to_thread(self._publish, deployment_id, files)
        return ProviderResult(
            DeploymentStatus.READY,
            url=f"/sites/{deployment_id}/",
            external_id=deployment_id,
            message=f"{len(files)} file{'' if len(files) == 1 else 's'} published",
        )

    def _publish(self, deployment_id: str, files: list[DeployFile]) -> None:
        """Copy into a temporary folder, then rename: a site is never served half-copied."""
        target = self.sites_dir / deployment_id
        staging = self.sites_dir / f".{deployment_id}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for item in files:
            dest = staging / item.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(item.source, dest, follow_symlinks=False)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)

    async def refresh(self, *, deployment_id: str, external_id: str | None) -> ProviderResult:
        if (self.sites_dir / deployment_id).is_dir():
            return ProviderResult(DeploymentStatus.READY, url=f"/sites/{deployment_id}/", external_id=deployment_id)
        return ProviderResult(DeploymentStatus.ERROR, message="The published copy is gone")

    async def aclose(self) -> None:
        return None


def site_file(sites_dir: Path, deployment_id: str, path: str) -> Path | None:
    """The file to serve for `path` of a local site, or None: no '..', no hidden names, nothing outside the site."""
    root = sites_dir / deployment_id
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." or p.startswith(".") or "\x00" in p or "\\" in p for p in parts):
        return None
    candidate = root.joinpath(*parts) if parts else root
    if candidate.is_dir():
        candidate = candidate / "index.html"
    try:
        real, real_root = candidate.resolve(strict=True), root.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_relative_to(real_root) or not real.is_file():
        return None
    return real
