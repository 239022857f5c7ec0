from __future__ import annotations

import httpx

from tests.support import UserHandle, gql


async def test_create_list_get_project(client: httpx.AsyncClient, alice: UserHandle) -> None:
    created = await client.post("/api/projects", json={"name": "Demo", "description": "d"}, headers=alice.headers)
    assert created.status_code == 201
    project = created.json()
    assert project["name"] == "Demo" and project["account_id"] == alice.user_id
    listed = await client.get("/api/projects", headers=alice.headers)
    assert [p["project_id"] for p in listed.json()["projects"]] == [project["project_id"]]
    fetched = await client.get(f"/api/projects/{project['project_id']}", headers=alice.headers)
    assert fetched.json() == project


async def test_projects_paginate_with_cursor(client: httpx.AsyncClient, alice: UserHandle) -> None:
    for index in range(5):
        await client.post("/api/projects", json={"name": f"p{index}"}, headers=alice.headers)
    first = (await client.get("/api/projects?limit=2", headers=alice.headers)).json()
    second = (await client.get(f"/api/projects?limit=2&cursor={first['next_cursor']}", headers=alice.headers)).json()
    third = (await client.get(f"/api/projects?limit=2&cursor={second['next_cursor']}", headers=alice.headers)).json()
    names = [p["name"] for page in (first, second, third) for p in page["projects"]]
    assert names == ["p4", "p3", "p2", "p1", "p0"]
    assert third["next_cursor"] is None


async def test_threads_create_and_filter_by_project(client: httpx.AsyncClient, alice: UserHandle) -> None:
    one = (await client.post("/api/projects", json={"name": "one"}, headers=alice.headers)).json()
    two = (await client.post("/api/projects", json={"name": "two"}, headers=alice.headers)).json()
    made = await client.post(
        "/api/threads", json={"project_id": one["project_id"], "title": "t1"}, headers=alice.headers
    )
    assert made.status_code == 201 and made.json()["project_id"] == one["project_id"]
    await client.post("/api/threads", json={"project_id": two["project_id"]}, headers=alice.headers)
    only_one = (await client.get(f"/api/threads?project_id={one['project_id']}", headers=alice.headers)).json()
    assert [t["title"] for t in only_one["threads"]] == ["t1"]
    everything = (await client.get("/api/threads", headers=alice.headers)).json()
    assert len(everything["threads"]) >= 2


async def test_app_type_is_kept_in_rest_and_graphql(client: httpx.AsyncClient, alice: UserHandle) -> None:
    """web by default, mobile when asked; anything else is a 422 (REST) or an InputError (GraphQL)."""
    plain = (await client.post("/api/projects", json={"name": "site"}, headers=alice.headers)).json()
    mobile = await client.post("/api/projects", json={"name": "app", "app_type": "mobile"}, headers=alice.headers)
    assert plain["app_type"] == "web" and mobile.json()["app_type"] == "mobile"
    refused = await client.post("/api/projects", json={"name": "x", "app_type": "tv"}, headers=alice.headers)
    assert refused.status_code == 422 and refused.json()["field"] == "app_type"
    query = "mutation($i: CreateProjectInput!) { createProject(input: $i) { ... on ProjectPayload { project { appType } } } }"
    answer = await gql(client, query, {"i": {"name": "gql app", "appType": "mobile"}}, user=alice)
    assert answer["data"]["createProject"]["project"]["appType"] == "mobile"
    listed = await gql(client, "{ projects(first: 10) { edges { node { name appType } } } }", user=alice)
    kinds = {edge["node"]["name"]: edge["node"]["appType"] for edge in listed["data"]["projects"]["edges"]}
    assert kinds["site"] == "web" and kinds["app"] == "mobile" and kinds["gql app"] == "mobile"
