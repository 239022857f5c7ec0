"""A real local HTTP server speaking a subset of Composio's v3 API: toolkits, tools, auth configs,
connected accounts (owned by a Composio user id) and MCP servers. Requests need the x-api-key."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.polar_server import BackgroundServer, Recorded

TOOLKITS: list[dict[str, Any]] = [
    {
        "slug": "github",
        "name": "GitHub",
        "meta": {
            "logo": "https://logos.composio.test/github.png",
            "description": "Code hosting",
            "categories": [{"id": "developer-tools", "name": "Developer Tools"}],
            "tools_count": 3,
        },
    },
    {
        "slug": "gmail",
        "name": "Gmail",
        "meta": {
            "logo": "https://logos.composio.test/gmail.png",
            "description": "Email by Google",
            "categories": [{"id": "communication", "name": "Communication"}],
            "tools_count": 2,
        },
    },
    {
        "slug": "slack",
        "name": "Slack",
        "meta": {
            "logo": "https://logos.composio.test/slack.png",
            "description": "Team chat",
            "categories": [{"id": "communication", "name": "Communication"}],
            "tools_count": 1,
        },
    },
]
TOOLS: dict[str, list[str]] = {
    "github": ["GITHUB_CREATE_ISSUE", "GITHUB_LIST_REPOS", "GITHUB_STAR_REPO"],
    "gmail": ["GMAIL_SEND_EMAIL", "GMAIL_FETCH_EMAILS"],
    "slack": ["SLACK_SEND_MESSAGE"],
}


class FakeComposioServer(BackgroundServer):
    def __init__(self, *, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.accounts: dict[str, dict[str, Any]] = {}
        self.app = Starlette(
            routes=[
                Route("/api/v3/toolkits", self._toolkits, methods=["GET"]),
                Route("/api/v3/toolkits/{slug}", self._toolkit, methods=["GET"]),
                Route("/api/v3/tools", self._tools, methods=["GET"]),
                Route("/api/v3/auth_configs", self._auth_config, methods=["POST"]),
                Route("/api/v3/connected_accounts", self._accounts, methods=["GET", "POST"]),
                Route("/api/v3/connected_accounts/{account_id}", self._account, methods=["GET", "DELETE"]),
                Route("/api/v3/mcp/servers", self._mcp_server, methods=["POST"]),
            ]
        )

    async def _begin(self, request: Request) -> tuple[Any, Response | None]:
        raw = await request.body()
        body = json.loads(raw) if raw else None
        self.requests.append(Recorded(request.method, request.url.path, dict(request.headers), body))
        if request.headers.get("x-api-key") != self.api_key:
            return body, JSONResponse({"error": {"message": "Invalid API key"}}, 401)
        return body, self._injected_failure()

    async def _toolkits(self, request: Request) -> Response:
        _, refusal = await self._begin(request)
        return refusal or JSONResponse({"items": TOOLKITS, "next_cursor": None, "total_pages": 1})

    async def _toolkit(self, request: Request) -> Response:
        _, refusal = await self._begin(request)
        found = [t for t in TOOLKITS if t["slug"] == request.path_params["slug"]]
        if refusal or not found:
            return refusal or JSONResponse({"error": {"message": "Toolkit not found"}}, 404)
        return JSONResponse({**found[0], "auth_config_details": [{"mode": "OAUTH2", "name": found[0]["name"]}]})

    async def _tools(self, request: Request) -> Response:
        _, refusal = await self._begin(request)
        slug = request.query_params.get("toolkit_slug", "")
        items = [
            {"slug": name, "name": name.replace("_", " ").title(), "toolkit": {"slug": slug}}
            for name in TOOLS.get(slug, [])
        ]
        return refusal or JSONResponse({"items": items, "next_cursor": None})

    async def _auth_config(self, request: Request) -> Response:
        body, refusal = await self._begin(request)
        if refusal:
            return refusal
        return JSONResponse(
            {"toolkit": body["toolkit"], "auth_config": {"id": f"ac_{uuid.uuid4().hex[:12]}", "auth_scheme": "OAUTH2"}},
            201,
        )

    async def _accounts(self, request: Request) -> Response:
        body, refusal = await self._begin(request)
        if refusal:
            return refusal
        if request.method == "GET":
            users = set(request.query_params.get("user_ids", "").split(","))
            return JSONResponse({"items": [a for a in self.accounts.values() if a["user_id"] in users]})
        account_id = f"ca_{uuid.uuid4().hex[:12]}"
        self.accounts[account_id] = {
            "id": account_id,
            "user_id": body["connection"]["user_id"],
            "status": "INITIATED",
            "auth_config": body["auth_config"],
        }
        return JSONResponse(
            {"id": account_id, "status": "INITIATED", "redirect_url": f"https://connect.composio.test/{account_id}"},
            201,
        )

    async def _account(self, request: Request) -> Response:
        _, refusal = await self._begin(request)
        account = self.accounts.get(request.path_params["account_id"])
        if refusal or account is None:
            return refusal or JSONResponse({"error": {"message": "Connected account not found"}}, 404)
        if request.method == "DELETE":
            del self.accounts[account["id"]]
            return JSONResponse({"success": True})
        return JSONResponse(account)

    async def _mcp_server(self, request: Request) -> Response:
        body, refusal = await self._begin(request)
        if refusal:
            return refusal
        server_id = uuid.uuid4().hex[:16]
        return JSONResponse(
            {
                "id": server_id,
                "name": body["name"],
                "mcp_url": f"https://mcp.composio.test/v3/mcp/{server_id}/mcp",
                "allowed_tools": body.get("allowed_tools", []),
            },
            201,
        )
