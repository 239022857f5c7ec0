"""Vercel through its REST API: POST /v13/deployments with the files inline, GET /v13/deployments/{id}."""

from __future__ import annotations

import asyncio
import base64
import re
from typing import Any

import httpx

from runplane.deployments.base import DeployFile, DeployProviderError, ProviderResult
from runplane.models.choices import DeploymentStatus

READY_STATES = {
    "QUEUED": DeploymentStatus.QUEUED,
    "INITIALIZING": DeploymentStatus.BUILDING,
    "BUILDING": DeploymentStatus.BUILDING,
    "READY": DeploymentStatus.READY,
    "ERROR": DeploymentStatus.ERROR,
    "CANCELED": DeploymentStatus.CANCELED,
}


def vercel_name(name: str) -> str:
    """Vercel project names: lowercase letters, digits, '.', '_', '-', at most 100 characters."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-._")
    return (cleaned or "runplane-site")[:100]


class VercelProvider:
    name = "vercel"

    def __init__(self, base_url: str, token: str, *, team_id: str | None = None) -> None:
        self.params = {"teamId": team_id} if team_id else {}
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(60, connect=10),
            trust_env=False,
        )

    async def deploy(self, *, deployment_id: str, name: str, files: list[DeployFile]) -> ProviderResult:
        inline = await asyncio.to_thread(_inline_files, files)
        body = {
            "name": vercel_name(name),
            "files": inline,
            "target": "production",
            "projectSettings": {"framework": None},
            "meta": {"runplane_deployment_id": deployment_id},
        }
        data = await self._call("POST", "/v13/deployments", json=body)
        return self._result(data)

    async def refresh(self, *, deployment_id: str, external_id: str | None) -> ProviderResult:
        if not external_id:
            return ProviderResult(DeploymentStatus.ERROR, message="Vercel never accepted this deployment")
        return self._result(await self._call("GET", f"/v13/deployments/{external_id}"))

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = await self.http.request(method, path, params=self.params, **kwargs)
        except httpx.HTTPError as exc:
            raise DeployProviderError(f"Vercel is unreachable: {type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400 or not isinstance(data, dict):
            message = (data.get("error") or {}).get("message") if isinstance(data, dict) else None
            raise DeployProviderError(f"Vercel answered {response.status_code}: {message or 'no message'}")
        return data

    @staticmethod
    def _result(data: dict[str, Any]) -> ProviderResult:
        state = str(data.get("readyState") or data.get("status") or "QUEUED").upper()
        url = data.get("url")
        if isinstance(url, str) and url and not url.startswith("http"):
            url = f"https://{url}"
        return ProviderResult(
            READY_STATES.get(state, DeploymentStatus.BUILDING),
            url=url if isinstance(url, str) else None,
            external_id=str(data.get("id") or "") or None,
            message=f"Vercel readyState {state}",
        )

    async def aclose(self) -> None:
        await self.http.aclose()


def _inline_files(files: list[DeployFile]) -> list[dict[str, str]]:
    return [
        {"file": f.path, "data": base64.b64encode(f.source.read_bytes()).decode(), "encoding": "base64"} for f in files
    ]
