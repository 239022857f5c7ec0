"""Choosing a deployment provider by name: the one module that knows every provider (each imports base.py, so
the choice cannot live there without an import cycle)."""

from __future__ import annotations

from runplane.config import Settings
from runplane.deployments.base import DeployProvider, sites_dir
from runplane.deployments.local import LocalSiteProvider
from runplane.deployments.vercel import VercelProvider
from runplane.errors import ServiceUnavailable
from runplane.models.choices import DeploymentProvider


def build_provider(kind: str, settings: Settings) -> DeployProvider:
    """`vercel` when asked and configured (503 when not, before anything is written), else the local sites."""
    if kind == DeploymentProvider.VERCEL:
        if not settings.vercel_token:
            raise ServiceUnavailable("Vercel deployments are not configured (RUNPLANE_VERCEL_TOKEN)")
        return VercelProvider(settings.vercel_api_url, settings.vercel_token, team_id=settings.vercel_team_id)
    return LocalSiteProvider(sites_dir(settings))
