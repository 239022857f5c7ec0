"""The web app's code tab, preview, deploy button, billing and settings pages: each call as its code makes it."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.cheatcode.conftest import bearer, has
from tests.cheatcode.test_agents import initiate, wait_finished
from tests.support import UserHandle

APP = "/workspace/cheatcode-app"
PACKAGE = {"name": "cheatcode-app", "private": True, "scripts": {"dev": "node server.js"}}
SERVER_JS = """const http = require('http');
const port = Number(process.env.PORT || 3000);
http.createServer((req, res) => res.end('<h1>hello from the dev server</h1>'))
  .listen(port, '127.0.0.1', () => console.log(`ready - started server on http://localhost:${port}`));
"""


async def project_with_sandbox(web: httpx.AsyncClient, user: UserHandle) -> tuple[str, str]:
    """lib/api/projects.ts getProject's ensureSandboxActive: POST /project/{id}/sandbox/ensure-active, JSON type."""
    started = await initiate(web, user, "say hi")
    await wait_finished(web, user, started["agent_run_id"])
    project_id = (await web.get("/projects", headers=bearer(user))).json()[0]["id"]
    ensured = await web.post(f"/project/{project_id}/sandbox/ensure-active", headers=bearer(user))
    assert ensured.status_code == 200
    sandbox_id = (await web.get("/projects", headers=bearer(user))).json()[0]["sandbox"]["id"]
    assert ensured.json()["sandbox_id"] == sandbox_id
    return project_id, sandbox_id


async def write(web: httpx.AsyncClient, user: UserHandle, sandbox_id: str, path: str, content: str) -> None:
    """lib/api/sandbox.ts createSandboxFileJson: POST files/json {path, content}."""
    response = await web.post(
        f"/sandboxes/{sandbox_id}/files/json", json={"path": path, "content": content}, headers=bearer(user)
    )
    assert response.status_code == 200, response.text


async def test_code_tab_reads_the_tree_and_files(web: httpx.AsyncClient, user: UserHandle) -> None:
    """components/thread/hooks/use-file-explorer.ts (getSandboxFileTree with path=/workspace/cheatcode-app, then
    getSandboxFileContent of `${workspacePath}/${node.path}`), listSandboxFiles (data.files, mod_time),
    listProjectFiles / getProjectFileContent (/project/{id}/git/...), file-upload-handler.tsx (multipart)."""
    project_id, sandbox_id = await project_with_sandbox(web, user)
    await write(web, user, sandbox_id, f"{APP}/package.json", json.dumps(PACKAGE))
    await write(web, user, sandbox_id, f"{APP}/src/page.tsx", "export default () => null\n")
    await write(web, user, sandbox_id, f"{APP}/node_modules/x/index.js", "skipped\n")
    upload = await web.post(
        f"/sandboxes/{sandbox_id}/files",
        files={"file": ("logo.png", b"\x89PNG", "image/png")},
        data={"path": f"{APP}/logo.png"},
        headers=bearer(user, False),
    )
    assert upload.status_code == 200, upload.text

    tree = (
        await web.get(f"/sandboxes/{sandbox_id}/files/tree", params={"path": APP}, headers=bearer(user, False))
    ).json()
    has(tree, tree=list, totalFiles=int, basePath=str)
    assert tree["basePath"] == APP and tree["totalFiles"] == 3  # node_modules is left out, as the original did
    names = {node["name"]: node for node in tree["tree"]}
    assert names["src"]["type"] == "directory" and names["package.json"]["type"] == "file"
    page = names["src"]["children"][0]
    has(page, name=str, path=str, fullPath=str, type=str)
    assert page["path"] == "src/page.tsx" and page["fullPath"] == f"{APP}/src/page.tsx"
    content = await web.get(
        f"/sandboxes/{sandbox_id}/files/content", params={"path": f"{APP}/{page['path']}"}, headers=bearer(user, False)
    )
    assert content.text == "export default () => null\n" and "text" in content.headers["content-type"]

    files = (await web.get(f"/sandboxes/{sandbox_id}/files", params={"path": APP}, headers=bearer(user, False))).json()
    for info in files["files"]:
        has(info, name=str, path=str, is_dir=bool, size=int, mod_time=str)
    listed = await web.get(f"/project/{project_id}/git/files", params={"path": APP}, headers=bearer(user, False))
    assert {f["name"] for f in listed.json()["files"]} == {f["name"] for f in files["files"]}
    source = await web.get(
        f"/project/{project_id}/git/file-content",
        params={"file_path": f"{APP}/package.json"},
        headers=bearer(user, False),
    )
    assert json.loads(source.json()["content"]) == PACKAGE
    archive = await web.get(f"/sandboxes/{sandbox_id}/download-archive", headers=bearer(user, False))
    assert archive.status_code == 200 and "filename=" in archive.headers["content-disposition"]


async def test_dev_server_started_like_the_app_previews(web: httpx.AsyncClient, user: UserHandle) -> None:
    """components/thread/hooks/use-dev-server.ts: start = execute `cd /workspace/cheatcode-app && npm run dev`
    (session dev_server_web, blocking false, cwd, no dev_server flag); connectSSE reads dev-server/stream with a
    raw fetch, keeping blocks that start with `data: ` (status running, preview_url); the session status's
    commands[].logs; checkStatus's blocking execute (output, success); use-preview-url.ts reads `preview_url`."""
    _, sandbox_id = await project_with_sandbox(web, user)
    await write(web, user, sandbox_id, f"{APP}/package.json", json.dumps(PACKAGE))
    await write(web, user, sandbox_id, f"{APP}/server.js", SERVER_JS)
    start = {
        "command": f"cd {APP} && npm run dev",
        "session_name": "dev_server_web",
        "blocking": False,
        "cwd": APP,
    }
    started = await web.post(f"/sandboxes/{sandbox_id}/execute", json=start, headers=bearer(user))
    assert started.status_code == 200, started.text

    seen: list[dict[str, Any]] = []
    url = f"/sandboxes/{sandbox_id}/dev-server/stream?session_name=dev_server_web&app_type=web"
    async with web.stream("GET", url, headers={**bearer(user, False), "Accept": "text/event-stream"}) as stream:
        buffer = ""
        async for text in stream.aiter_text():
            buffer += text
            *events, buffer = buffer.split("\n\n")
            seen += [json.loads(e[6:]) for e in events if e.startswith("data: ")]
            if any(frame.get("type") == "preview_url" for frame in seen):
                break
    statuses = [f["status"] for f in seen if f.get("type") == "status"]
    assert statuses[0] == "starting" and "running" in statuses, seen
    preview_from_stream = next(f["url"] for f in seen if f.get("type") == "preview_url")

    status = (
        await web.get(f"/sandboxes/{sandbox_id}/sessions/dev_server_web/status", headers=bearer(user, False))
    ).json()
    assert any("ready" in command["logs"] for command in status["commands"])
    check = {"command": "echo 200", "blocking": True, "timeout": 10}
    checked = (await web.post(f"/sandboxes/{sandbox_id}/execute", json=check, headers=bearer(user))).json()
    has(checked, output=str, success=bool)
    assert checked["output"].strip() == "200" and checked["success"] is True

    preview = (await web.get(f"/sandboxes/{sandbox_id}/preview-url", headers=bearer(user))).json()
    has(preview, preview_url=str)
    for address in (preview["preview_url"], preview_from_stream):
        async with httpx.AsyncClient() as browser:  # the iframe: no Authorization, the token is in the URL
            page = await browser.get(address)
        assert page.status_code == 200 and "hello from the dev server" in page.text
    expo = (await web.get(f"/sandboxes/{sandbox_id}/expo-url", headers=bearer(user))).json()
    has(expo, expo_url=str)
    await web.post(f"/sandboxes/{sandbox_id}/sessions/dev_server_web/stop", headers=bearer(user, False))


async def test_deploy_button(web: httpx.AsyncClient, user: UserHandle) -> None:
    """components/thread/thread-site-header.tsx (createClerkBackendApi): deployment/status (has_deployment,
    domains), deploy/git with {domains: []} (data.domains), live-status while deploying (state), deploy/git/update."""
    project_id, sandbox_id = await project_with_sandbox(web, user)
    await write(web, user, sandbox_id, "index.html", "<h1>site</h1>")
    before = (await web.get(f"/project/{project_id}/deployment/status", headers=bearer(user))).json()
    assert before["has_deployment"] is False and before["domains"] == []
    deployed = await web.post(f"/project/{project_id}/deploy/git", json={"domains": []}, headers=bearer(user))
    assert deployed.status_code in (200, 201), deployed.text
    assert deployed.json()["domains"]
    after = (await web.get(f"/project/{project_id}/deployment/status", headers=bearer(user))).json()
    has(after, has_deployment=bool, domains=list)
    assert after["has_deployment"] is True
    live = (await web.get(f"/project/{project_id}/deployment/live-status", headers=bearer(user))).json()
    assert live["state"] in {"preparing", "pushing", "building", "deploying", "deployed", "failed"}
    assert live["state"] == "deployed"
    updated = await web.post(f"/project/{project_id}/deploy/git/update", json={}, headers=bearer(user))
    assert updated.status_code in (200, 201), updated.text
    async with httpx.AsyncClient() as browser:
        site = await browser.get("http://" + after["domains"][0] + "/")
    assert "<h1>site</h1>" in site.text


async def test_billing_and_settings_pages(web: httpx.AsyncClient, user: UserHandle) -> None:
    """lib/api/billing.ts (checkBillingStatus, getSubscription, getUsageHistory with ?days=30, getAvailablePlans),
    hooks/react-query/settings/use-settings-queries.ts (BYOK status) and the BYOK proxy routes of
    frontend/src/app/api/billing/openrouter-key/*.ts, which add `?account_id=` (runplane still needs the token)."""
    started = await initiate(web, user, "say hi")
    await wait_finished(web, user, started["agent_run_id"])
    status = (await web.get("/billing/status", headers=bearer(user, False))).json()
    has(status, account_id=str, plan_id=str, plan_name=str, credits_remaining=int, credits_total=int)
    has(status, quota_resets_at=str, subscription_status=str, features=list, can_run=bool)
    has(status, deployments_used=int, tokens_remaining=int, tokens_total=int)
    assert "deployments_total" in status and status["account_id"] == user.user_id
    sub = (await web.get("/billing/subscription", headers=bearer(user, False))).json()
    has(sub, status=str, current_period_end=str, cancel_at_period_end=bool)
    usage = (await web.get("/billing/usage-history?days=30", headers=bearer(user, False))).json()
    has(usage, usage_entries=list, total_tokens_used=int, total_credits_used=int, account_id=str)
    assert usage["usage_entries"][0]["thread_id"] == started["thread_id"]
    has(usage["usage_entries"][0], model=str, total_tokens=int, created_at=str)
    plans = (await web.get("/billing/plans", headers=bearer(user, False))).json()
    has(plans, plans=list, current_plan=str)
    for plan in plans["plans"]:
        has(plan, name=str, price_usd=(int, float), features=list, description=str)
        assert "token_quota" in plan and "display_credits" in plan

    key = (await web.get("/billing/openrouter-key/status", headers=bearer(user, False))).json()
    has(key, has_key=bool, key_configured=bool)
    assert key["has_key"] is False and "display_name" in key and "last_used_at" in key
    mine = await web.get("/billing/openrouter-key/status", params={"account_id": user.user_id}, headers=bearer(user))
    assert mine.status_code == 200
    theirs = await web.get(
        "/billing/openrouter-key/status",
        params={"account_id": "00000000-0000-0000-0000-000000000000"},
        headers=bearer(user),
    )
    assert theirs.status_code == 404  # an account_id not the token's is never trusted
    proxied = await web.get("/billing/openrouter-key/status", params={"account_id": user.user_id})
    assert proxied.status_code == 401  # the proxy as written sends no token: runplane does not take the id's word
