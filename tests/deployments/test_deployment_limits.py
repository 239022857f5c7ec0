"""The plan's deployments limit (how many projects may be deployed): free allows one. Checked where version 1
is inserted, under the lock of the owner's subscription, so concurrent first deploys cannot both pass."""

from __future__ import annotations

import asyncio

import httpx

from tests.billing.test_limits import assert_limit_402, free_user
from tests.deployments.test_deployments import project_with_files
from tests.integrations.conftest import Configured, cclient, configured  # noqa: F401 - fixtures
from tests.support import gql

FIELDS = "__typename ... on DeploymentPayload { deployment { version } } ... on QuotaExceededError { code plan limit used allowed }"
DEPLOY = f"mutation($p: ID!) {{ deployProject(input: {{projectId: $p}}) {{ {FIELDS} }} }}"


async def test_free_plan_deploys_one_project_even_when_asked_concurrently(cclient: httpx.AsyncClient) -> None:  # noqa: F811
    client = cclient
    user = await free_user(client)
    projects = [await project_with_files(client, user, {"dist/index.html": f"<p>{i}</p>".encode()}) for i in range(3)]
    limits = httpx.Limits(max_connections=10, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=str(client.base_url), timeout=30, limits=limits) as http:
        rest = await asyncio.gather(
            *(http.post(f"/api/project/{pid}/deploy/git", headers=user.headers) for pid in projects[:2]),
            gql(http, DEPLOY, {"p": projects[2]}, user=user),
        )
    codes = [r.status_code for r in rest[:2]]
    typename = rest[2]["data"]["deployProject"]["__typename"]
    assert codes.count(201) + (typename == "DeploymentPayload") == 1, (codes, rest[2])
    for response in rest[:2]:
        if response.status_code != 201:
            assert_limit_402(response, "deployments", 1, 1)
    if typename != "DeploymentPayload":
        assert rest[2]["data"]["deployProject"] == {
            "__typename": "QuotaExceededError",
            "code": "QUOTA_EXCEEDED",
            "plan": "free",
            "limit": "deployments",
            "used": 1,
            "allowed": 1,
        }

    statuses = [
        (await client.get(f"/api/project/{pid}/deployment/status", headers=user.headers)).json()["status"]
        for pid in projects
    ]
    assert sorted(statuses) == ["not_deployed", "not_deployed", "ready"]
    deployed = projects[statuses.index("ready")]
    updated = await client.post(f"/api/project/{deployed}/deploy/git/update", headers=user.headers)
    assert (
        updated.status_code == 200 and updated.json()["version"] == 2
    )  # new versions of a deployed project are not capped
    other = next(pid for pid in projects if pid != deployed)
    assert_limit_402(await client.post(f"/api/project/{other}/deploy/git", headers=user.headers), "deployments", 1, 1)
    again = (await gql(client, DEPLOY, {"p": other}, user=user))["data"]["deployProject"]
    assert again["__typename"] == "QuotaExceededError" and again["limit"] == "deployments"
