"""The provider interface, collecting a folder's files (bounded, no symlinks), and choosing a provider."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runplane.errors import DomainError, PayloadTooLarge

if TYPE_CHECKING:
    from runplane.config import Settings

PROVIDERS = ("local", "vercel")
SKIPPED_DIRS = frozenset({".git", "node_modules", ".snapshots", "__pycache__"})


class ProviderError(DomainError):
    """The deployment provider failed or refused: 502, the message says why."""

    code = "DEPLOY_PROVIDER_ERROR"
    status = 502


@dataclass(frozen=True)
class DeployFile:
    path: str  # relative, POSIX
    source: Path
    size: int


@dataclass(frozen=True)
class ProviderResult:
    status: str  # one of models.deployment.DEPLOYMENT_STATUSES
    url: str | None = None
    external_id: str | None = None
    message: str = ""


class DeployProvider(Protocol):
    name: str

    async def deploy(self, *, deployment_id: str, name: str, files: list[DeployFile]) -> ProviderResult: ...

    async def refresh(self, *, deployment_id: str, external_id: str | None) -> ProviderResult: ...

    async def aclose(self) -> None: ...


def collect_files(root: Path, *, max_files: int, max_bytes: int) -> list[DeployFile]:
    """Regular files under root, symlinks and tool folders skipped; PayloadTooLarge past the limits."""
    files: list[DeployFile] = []
    total = 0
    for current, dirs, names in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not os.path.islink(os.path.join(current, d)))
        for name in sorted(names):
            full = Path(current) / name
            stat = full.lstat()
            if not full.is_file() or full.is_symlink():
                continue
            total += stat.st_size
            if len(files) >= max_files or total > max_bytes:
                raise PayloadTooLarge(
                    f"The folder exceeds the deployment limits ({max_files} files, {max_bytes} bytes)"
                )
            files.append(DeployFile(full.relative_to(root).as_posix(), full, stat.st_size))
    return files


def build_provider(kind: str, settings: Settings) -> DeployProvider:
    if kind == "vercel":
        from runplane.deployments.vercel import VercelProvider

        if not settings.vercel_token:
            from runplane.errors import ServiceUnavailable

            raise ServiceUnavailable("Vercel deployments are not configured (RUNPLANE_VERCEL_TOKEN)")
        return VercelProvider(settings.vercel_api_url, settings.vercel_token, team_id=settings.vercel_team_id)
    from runplane.deployments.local import LocalSiteProvider

    return LocalSiteProvider(sites_dir(settings))


def sites_dir(settings: Settings) -> Path:
    return settings.data_dir / "sites"
