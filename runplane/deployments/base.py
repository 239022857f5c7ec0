"""The provider interface, a frozen copy of a folder's files (bounded, no symlinks), and choosing a provider."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from runplane.errors import DomainError, ErrorCode, PayloadTooLarge
from runplane.models.choices import DeploymentProvider, DeploymentStatus
from runplane.sandboxes.errors import SandboxLimitError
from runplane.sandboxes.fdwalk import Owner
from runplane.sandboxes.freeze import FreezeLimits, freeze_folder

if TYPE_CHECKING:
    from runplane.config import Settings

PROVIDERS: tuple[str, ...] = tuple(DeploymentProvider)
STAGING_PREFIX = ".freeze-"  # hidden: site_file never serves a name starting with "."
STALE_STAGING_SECONDS = 3600
SKIPPED_DIRS = frozenset({".git", "node_modules", ".snapshots", "__pycache__"})


class DeployProviderError(DomainError):
    """The deployment provider failed or refused: 502, the message says why."""

    code = ErrorCode.DEPLOY_PROVIDER_ERROR
    status = 502


@dataclass(frozen=True)
class DeployFile:
    path: str  # relative, POSIX
    source: Path
    size: int


@dataclass(frozen=True)
class ProviderResult:
    status: DeploymentStatus
    url: str | None = None
    external_id: str | None = None
    message: str = ""


class DeployProvider(Protocol):
    name: str

    async def deploy(self, *, deployment_id: str, name: str, files: list[DeployFile]) -> ProviderResult: ...

    async def refresh(self, *, deployment_id: str, external_id: str | None) -> ProviderResult: ...

    async def aclose(self) -> None: ...


def freeze_files(
    root: Path, parts: tuple[str, ...], dest: Path, *, owner: Owner, max_files: int, max_bytes: int
) -> list[DeployFile]:
    """A frozen copy of the folder root/parts in dest (through the fd walker: no symlink followed, only regular
    files, tool folders skipped) and its files; PayloadTooLarge past the limits. Providers publish from dest."""
    limits = FreezeLimits(max_files=max_files, max_bytes=max_bytes, skip_dirs=SKIPPED_DIRS)
    try:
        frozen = freeze_folder(root, parts, dest, owner, limits)
    except SandboxLimitError:
        raise PayloadTooLarge(
            f"The folder exceeds the deployment limits ({max_files} files, {max_bytes} bytes)"
        ) from None
    return [DeployFile(f.path, dest / f.path, f.size) for f in frozen]


def staging_dir(sites: Path) -> Path:
    """A new directory of the server's (0700, beside the published sites) for one deploy's frozen copy. Copies left
    by a process killed mid-deploy are removed here, once they are older than any deploy takes."""
    sites.mkdir(parents=True, exist_ok=True)
    for stale in sites.glob(f"{STAGING_PREFIX}*"):
        with contextlib.suppress(OSError):
            if time.time() - stale.lstat().st_mtime > STALE_STAGING_SECONDS:
                shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=sites))


def sites_dir(settings: Settings) -> Path:
    return settings.data_dir / "sites"
