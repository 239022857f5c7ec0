"""Deployment providers: publish a folder of a project's sandbox somewhere reachable.

`local` (the default) copies the folder under data_dir/sites/<deployment id> and runplane serves it at
/sites/<deployment id>/. `vercel` uploads the files inline to Vercel's REST deployments API."""

from runplane.deployments.base import (
    DeployFile,
    DeployProvider,
    DeployProviderError,
    ProviderResult,
)
from runplane.deployments.registry import build_provider

__all__ = ["DeployFile", "DeployProvider", "DeployProviderError", "ProviderResult", "build_provider"]
