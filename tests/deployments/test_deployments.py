"""Deployments: the local static provider and Vercel (the fake), on the configured server of tests/integrations
(a subprocess with a sandbox directory sandbox uids can reach; a second in-process app would clash with Tortoise's
global context when the whole suite runs)."""

from __future__ import annotations

import uuid

import httpx

from tests.integrations.conftest import VERCEL_TOKEN, Configured, cclient, configured  # noqa: F401 - fixtures
from tests.support import UserHandle, gql, register_user


async def project_with_files(client: httpx.AsyncClient, user: UserHandle, files: dict[str, bytes]) -> str:
    project_id = (await client.post("/api/projects", json={"name": "My Site"}, headers=user.headers)).json()[
        "project_id"
    ]
    sandbox = await client.post(f"/api/project/{project_id}/sandbox/ensure-active", headers=user.headers)
    assert sandbox.status_code == 200, sandbox.text
    sandbox_id = sandbox.json()["sandbox_id"]
    parts = [("file", (path.rsplit("/", 1)[-1], data)) for path, data in files.items()]
    data = {"path": list(files)}
    uploaded = await client.post(f"/api/sandboxes/{sandbox_id}/files", files=parts, data=data, headers=user.headers)
    assert uploaded.status_code == 200, uploaded.text
    return str(project_id)


async def test_local_deploy_serves_dist_and_keeps_history(cclient: httpx.AsyncClient, configured: Configured) -> None:  # noqa: F811
    client = cclient
    user = await register_user(client)
    pid = await project_with_files(
        client,
        user,
        {"dist/index.html": b"<h1>v1</h1>", "dist/app.js": b"console.log(1)", "src/secret.txt": b"not published"},
    )
    assert (await client.get(f"/api/project/{pid}/deployment/status", headers=user.headers)).json()[
        "status"
    ] == "not_deployed"
    deployed = await client.post(f"/api/project/{pid}/deploy/git", headers=user.headers)
    assert deployed.status_code == 201, deployed.text
    body = deployed.json()
    assert (
        body["provider"] == "local"
        and body["status"] == "ready"
        and body["source_dir"] == "dist"
        and body["version"] == 1
    )
    assert [h["status"] for h in body["history"]] == ["queued", "ready"]
    # Served on an origin of their own (runplane/origins.py), never the API's.
    assert body["url"] == f"{configured.server.untrusted_url}/sites/{body['deployment_id']}/"
    assert configured.server.untrusted_url != configured.base_url
    page = await client.get(body["url"])
    assert (
        page.status_code == 200 and page.text == "<h1>v1</h1>" and page.headers["content-type"].startswith("text/html")
    )
    assert (
        (await client.get(body["url"] + "app.js"))
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )
    for bad in ["../src/secret.txt", "%2e%2e/%2e%2e/runplane.sqlite3", "missing.html", ".hidden"]:
        assert (await client.get(body["url"] + bad)).status_code == 404, bad
    assert (await client.get(f"{configured.server.untrusted_url}/sites/not-a-uuid/")).status_code == 404
    again = await client.post(f"/api/project/{pid}/deploy/git", headers=user.headers)
    assert again.status_code == 409
    updated = await client.post(
        f"/api/project/{pid}/deploy/git/update", json={"source_dir": "/workspace/src"}, headers=user.headers
    )
    assert updated.status_code == 200 and updated.json()["version"] == 2 and updated.json()["source_dir"] == "src"
    assert (await client.get(updated.json()["url"] + "secret.txt")).text == "not published"
    status = (await client.get(f"/api/project/{pid}/deployment/status", headers=user.headers)).json()
    live = (await client.get(f"/api/project/{pid}/deployment/live-status", headers=user.headers)).json()
    assert (
        status["deployment_id"] == live["deployment_id"] == updated.json()["deployment_id"]
        and live["status"] == "ready"
    )


async def test_deploy_input_is_validated_and_owned(cclient: httpx.AsyncClient, client: httpx.AsyncClient) -> None:  # noqa: F811
    session_user = await register_user(client)  # the session server: Vercel is not configured there
    session_pid = (await client.post("/api/projects", json={"name": "x"}, headers=session_user.headers)).json()[
        "project_id"
    ]
    vercel = await client.post(
        f"/api/project/{session_pid}/deploy/git", json={"provider": "vercel"}, headers=session_user.headers
    )
    assert vercel.status_code == 503 and "RUNPLANE_VERCEL_TOKEN" in vercel.json()["detail"]
    client = cclient
    user, other = await register_user(client), await register_user(client)
    pid = await project_with_files(client, user, {"index.html": b"hi"})
    for body, status in [
        ({"source_dir": "../.."}, 422),
        ({"source_dir": "nope"}, 422),
        ({"source_dir": 5}, 422),
        ({"provider": "netlify"}, 422),
        ({"name": ["x"]}, 422),
        ({"source_dir": "/etc"}, 422),
    ]:
        response = await client.post(f"/api/project/{pid}/deploy/git", json=body, headers=user.headers)
        assert response.status_code == status, (body, response.text)
    assert (
        await client.post(f"/api/project/{pid}/deploy/git", content=b"[1]", headers=user.headers)
    ).status_code == 422
    assert (await client.post(f"/api/project/{pid}/deploy/git/update", headers=user.headers)).status_code == 404
    for method, path in [
        ("POST", "deploy/git"),
        ("POST", "deploy/git/update"),
        ("GET", "deployment/status"),
        ("GET", "deployment/live-status"),
    ]:
        assert (await client.request(method, f"/api/project/{pid}/{path}", headers=other.headers)).status_code == 404
        assert (
            await client.request(method, f"/api/project/{uuid.uuid4()}/{path}", headers=user.headers)
        ).status_code == 404
        assert (await client.request(method, f"/api/project/x/{path}")).status_code == 401


async def test_graphql_twins(cclient: httpx.AsyncClient) -> None:  # noqa: F811
    client = cclient
    user = await register_user(client)
    pid = await project_with_files(client, user, {"build/index.html": b"<p>gql</p>"})
    fields = "... on DeploymentPayload { deployment { id version status url sourceDir history { status } } } ... on UserError { code message }"
    deployed = await gql(
        client, f"mutation($p: ID!) {{ deployProject(input: {{projectId: $p}}) {{ {fields} }} }}", {"p": pid}, user=user
    )
    deployment = deployed["data"]["deployProject"]["deployment"]
    assert deployment["status"] == "ready" and deployment["sourceDir"] == "build" and deployment["url"].endswith("/")
    updated = await gql(
        client,
        f"mutation($p: ID!) {{ updateDeployment(input: {{projectId: $p}}) {{ {fields} }} }}",
        {"p": pid},
        user=user,
    )
    assert updated["data"]["updateDeployment"]["deployment"]["version"] == 2
    status = await gql(
        client,
        "query($p: ID!) { deploymentStatus(projectId: $p, live: true) { version status history { status } } }",
        {"p": pid},
        user=user,
    )
    assert status["data"]["deploymentStatus"] == {
        "version": 2,
        "status": "ready",
        "history": [{"status": "queued"}, {"status": "ready"}],
    }
    conflict = await gql(
        client, f"mutation($p: ID!) {{ deployProject(input: {{projectId: $p}}) {{ {fields} }} }}", {"p": pid}, user=user
    )
    assert conflict["data"]["deployProject"]["code"] == "CONFLICT"
    other = await register_user(client)
    hidden = await gql(client, "query($p: ID!) { deploymentStatus(projectId: $p) { version } }", {"p": pid}, user=other)
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_vercel_deploy_through_the_rest_api(cclient: httpx.AsyncClient, configured: Configured) -> None:  # noqa: F811
    user = await register_user(cclient)
    pid = await project_with_files(cclient, user, {"dist/index.html": b"<h1>vercel</h1>", "dist/a/b.css": b"body{}"})
    deployed = await cclient.post(
        f"/api/project/{pid}/deploy/git", json={"provider": "vercel", "name": "My Site!"}, headers=user.headers
    )
    assert deployed.status_code == 201, deployed.text
    body = deployed.json()
    assert body["provider"] == "vercel" and body["status"] == "building" and body["external_id"].startswith("dpl_")
    assert body["url"].startswith("https://my-site-") and body["url"].endswith(".vercel.app")
    sent = configured.vercel.recorded("POST", "/v13/deployments")[-1]
    assert sent.headers["authorization"] == f"Bearer {VERCEL_TOKEN}" and sent.body["name"] == "my-site"
    assert configured.vercel.files[body["external_id"]] == {"index.html": b"<h1>vercel</h1>", "a/b.css": b"body{}"}
    assert configured.vercel.deployments[body["external_id"]]["query"] == {"teamId": "team_runplane"}
    first = (await cclient.get(f"/api/project/{pid}/deployment/live-status", headers=user.headers)).json()
    assert first["status"] == "building"
    ready = (await cclient.get(f"/api/project/{pid}/deployment/live-status", headers=user.headers)).json()
    assert ready["status"] == "ready" and [h["status"] for h in ready["history"]] == ["queued", "building", "ready"]
    updated = await cclient.post(f"/api/project/{pid}/deploy/git/update", headers=user.headers)
    assert updated.json()["provider"] == "vercel" and updated.json()["version"] == 2


async def test_vercel_failure_is_recorded_and_502(cclient: httpx.AsyncClient, configured: Configured) -> None:  # noqa: F811
    user = await register_user(cclient)
    pid = await project_with_files(cclient, user, {"index.html": b"x"})
    configured.vercel.fail_next(500)
    failed = await cclient.post(f"/api/project/{pid}/deploy/git", json={"provider": "vercel"}, headers=user.headers)
    assert failed.status_code == 502 and "Vercel answered 500" in failed.json()["detail"]
    status = (await cclient.get(f"/api/project/{pid}/deployment/status", headers=user.headers)).json()
    assert status["status"] == "error" and [h["status"] for h in status["history"]] == ["queued", "error"]
