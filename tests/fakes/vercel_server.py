"""A real local HTTP server speaking Vercel's deployments API as runplane uses it:
POST /v13/deployments (files inline, base64) and GET /v13/deployments/{id} (readyState).

A deployment is BUILDING until `finish(id)` (or `ready_after` GETs) makes it READY."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.polar_server import BackgroundServer, Recorded


class FakeVercelServer(BackgroundServer):
    def __init__(self, *, token: str, ready_after: int = 1) -> None:
        super().__init__()
        self.token = token
        self.ready_after = ready_after  # GETs answered BUILDING before READY
        self.deployments: dict[str, dict[str, Any]] = {}
        self.files: dict[str, dict[str, bytes]] = {}
        self.app = Starlette(
            routes=[
                Route("/v13/deployments", self._create, methods=["POST"]),
                Route("/v13/deployments/{deployment_id}", self._get, methods=["GET"]),
            ]
        )

    def _refuse(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return JSONResponse({"error": {"code": "forbidden", "message": "Not authorized"}}, 403)
        return self._injected_failure()

    async def _create(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw or b"{}")
        self.requests.append(Recorded("POST", request.url.path, dict(request.headers), body))
        if (refusal := self._refuse(request)) is not None:
            return refusal
        files = body.get("files")
        if not isinstance(body.get("name"), str) or not isinstance(files, list) or not files:
            return JSONResponse({"error": {"code": "bad_request", "message": "name and files are required"}}, 400)
        deployment_id = f"dpl_{uuid.uuid4().hex[:20]}"
        self.files[deployment_id] = {f["file"]: base64.b64decode(f["data"]) for f in files}
        self.deployments[deployment_id] = {
            "id": deployment_id,
            "url": f"{body['name']}-{deployment_id[4:12]}.vercel.app",
            "name": body["name"],
            "readyState": "BUILDING",
            "gets": 0,
            "query": dict(request.query_params),
        }
        return JSONResponse(self._public(deployment_id))

    async def _get(self, request: Request) -> Response:
        self.requests.append(Recorded("GET", request.url.path, dict(request.headers), None))
        if (refusal := self._refuse(request)) is not None:
            return refusal
        deployment = self.deployments.get(request.path_params["deployment_id"])
        if deployment is None:
            return JSONResponse({"error": {"code": "not_found", "message": "Deployment not found"}}, 404)
        deployment["gets"] += 1
        if deployment["gets"] >= self.ready_after and deployment["readyState"] == "BUILDING":
            deployment["readyState"] = "READY"
        return JSONResponse(self._public(deployment["id"]))

    def _public(self, deployment_id: str) -> dict[str, Any]:
        d = self.deployments[deployment_id]
        return {"id": d["id"], "url": d["url"], "name": d["name"], "readyState": d["readyState"]}
