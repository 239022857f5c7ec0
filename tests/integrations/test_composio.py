"""Composio catalog (through the fake Composio API, cached) and integration profiles (stored per user)."""

from __future__ import annotations

import uuid

import httpx

from tests.integrations.conftest import COMPOSIO_KEY, Configured
from tests.support import register_user


async def create(client: httpx.AsyncClient, headers: dict[str, str], **body: object) -> httpx.Response:
    return await client.post(
        "/api/composio/profiles",
        json={"toolkit_slug": "github", "profile_name": f"p-{uuid.uuid4().hex[:6]}", **body},
        headers=headers,
    )


async def test_catalog_is_served_from_composio_and_cached(cclient: httpx.AsyncClient, configured: Configured) -> None:
    user = await register_user(cclient)
    health = await cclient.get("/api/composio/health", headers=user.headers)
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    before = len(configured.composio.recorded("GET", "/api/v3/toolkits"))
    toolkits = (await cclient.get("/api/composio/toolkits", headers=user.headers)).json()
    assert {t["slug"] for t in toolkits["toolkits"]} == {"github", "gmail", "slack"}
    categories = (await cclient.get("/api/composio/categories", headers=user.headers)).json()["categories"]
    assert {c["id"]: c["toolkit_count"] for c in categories} == {"communication": 2, "developer-tools": 1}
    filtered = (
        await cclient.get("/api/composio/toolkits?category=communication&search=mail", headers=user.headers)
    ).json()
    assert [t["slug"] for t in filtered["toolkits"]] == ["gmail"]
    assert len(configured.composio.recorded("GET", "/api/v3/toolkits")) == before  # cached
    details = await cclient.get("/api/composio/toolkits/github/details", headers=user.headers)
    assert details.json()["toolkit"]["name"] == "GitHub"
    icon = await cclient.get("/api/composio/toolkits/github/icon", headers=user.headers)
    assert icon.json()["icon_url"] == "https://logos.composio.test/github.png"
    assert configured.composio.recorded("GET", "/api/v3/toolkits/github")[-1].headers["x-api-key"] == COMPOSIO_KEY
    tools = await cclient.get("/api/composio/tools/list?toolkit_slug=gmail", headers=user.headers)
    assert [t["slug"] for t in tools.json()["tools"]] == ["GMAIL_SEND_EMAIL", "GMAIL_FETCH_EMAILS"]


async def test_catalog_input_and_unknown_toolkits(cclient: httpx.AsyncClient) -> None:
    user = await register_user(cclient)
    assert (await cclient.get("/api/composio/toolkits/nope/details", headers=user.headers)).status_code == 404
    assert (await cclient.get("/api/composio/toolkits/..%2F..%2Fadmin/details", headers=user.headers)).status_code in (
        404,
        422,
    )
    assert (await cclient.get("/api/composio/toolkits/Bad Slug!/icon", headers=user.headers)).status_code == 422
    assert (await cclient.get("/api/composio/tools/list", headers=user.headers)).status_code == 422
    assert (
        await cclient.get("/api/composio/tools/list?toolkit_slug=github&limit=x", headers=user.headers)
    ).status_code == 422


async def test_profile_lifecycle(cclient: httpx.AsyncClient, configured: Configured) -> None:
    user = await register_user(cclient)
    created = await create(
        cclient,
        user.headers,
        profile_name="work",
        enabled_tools=["GITHUB_CREATE_ISSUE"],
        is_default=True,
        mcp_config={"timeout": 30},
    )
    assert created.status_code == 201, created.text
    profile = created.json()
    assert profile["mcp_url"].startswith("https://mcp.composio.test/") and profile["mcp_url"].endswith(
        f"?user_id={user.user_id}"
    )
    assert profile["redirect_url"].startswith("https://connect.composio.test/ca_") and profile["is_default"]
    pid = profile["profile_id"]
    assert (await cclient.get(f"/api/composio/profiles/{pid}", headers=user.headers)).json()["profile_name"] == "work"
    availability = await cclient.get("/api/composio/profiles/check-name-availability?name=work", headers=user.headers)
    assert availability.json()["available"] is False
    assert (await cclient.get("/api/composio/profiles/check-name-availability?name=home", headers=user.headers)).json()[
        "available"
    ]
    assert (await create(cclient, user.headers, profile_name="work")).status_code == 409
    updated = await cclient.put(
        f"/api/composio/profiles/{pid}", json={"display_name": "Work GitHub"}, headers=user.headers
    )
    assert updated.json()["display_name"] == "Work GitHub"
    tools = await cclient.put(
        f"/api/composio/profiles/{pid}/tools", json={"enabled_tools": ["GITHUB_LIST_REPOS"]}, headers=user.headers
    )
    assert tools.json()["enabled_tools"] == ["GITHUB_LIST_REPOS"]
    discovered = await cclient.post(f"/api/composio/discover-tools/{pid}", headers=user.headers)
    assert discovered.json()["total_tools"] == 3
    config = (await cclient.get(f"/api/composio/profiles/{pid}/mcp-config", headers=user.headers)).json()["mcp_config"]
    assert (
        config["url"] == profile["mcp_url"]
        and config["enabled_tools"] == ["GITHUB_LIST_REPOS"]
        and config["config"] == {"timeout": 30}
    )
    listed = (await cclient.get("/api/composio/profiles", headers=user.headers)).json()["profiles"]
    assert [p["profile_id"] for p in listed] == [pid]
    assert (await cclient.delete(f"/api/composio/profiles/{pid}", headers=user.headers)).status_code == 200
    assert (await cclient.get(f"/api/composio/profiles/{pid}", headers=user.headers)).status_code == 404


async def test_another_users_profile_is_not_found(cclient: httpx.AsyncClient) -> None:
    alice, bob = await register_user(cclient), await register_user(cclient)
    pid = (await create(cclient, alice.headers)).json()["profile_id"]
    for method, path in [
        ("GET", f"/api/composio/profiles/{pid}"),
        ("DELETE", f"/api/composio/profiles/{pid}"),
        ("GET", f"/api/composio/profiles/{pid}/mcp-config"),
        ("POST", f"/api/composio/discover-tools/{pid}"),
        ("GET", f"/api/composio-secure/composio-profiles/{pid}/mcp-url"),
        ("PUT", f"/api/composio-secure/credential-profiles/{pid}/set-default"),
        ("PUT", f"/api/composio-secure/credential-profiles/{pid}/toggle-active"),
        ("DELETE", f"/api/composio-secure/credential-profiles/{pid}"),
    ]:
        response = await cclient.request(method, path, headers=bob.headers)
        assert response.status_code == 404, (method, path, response.text)
    bulk = await cclient.post(
        "/api/composio-secure/credential-profiles/bulk-delete", json={"profile_ids": [pid]}, headers=bob.headers
    )
    assert bulk.json()["deleted_count"] == 0 and bulk.json()["not_found_ids"] == [pid]
    assert (await cclient.get(f"/api/composio/profiles/{pid}", headers=alice.headers)).status_code == 200


async def test_connections_are_owned(cclient: httpx.AsyncClient, configured: Configured) -> None:
    alice, bob = await register_user(cclient), await register_user(cclient)
    account = (await create(cclient, alice.headers)).json()["connected_account_id"]
    listed = (await cclient.get("/api/composio/connections", headers=alice.headers)).json()["connections"]
    assert [c["id"] for c in listed] == [account]
    assert (await cclient.get("/api/composio/connections", headers=bob.headers)).json()["connections"] == []
    status = await cclient.get(f"/api/composio/connections/status/{account}", headers=alice.headers)
    assert status.json()["status"] == "INITIATED"
    assert (await cclient.get(f"/api/composio/connections/status/{account}", headers=bob.headers)).status_code == 404
    assert (await cclient.delete(f"/api/composio/connections/{account}", headers=bob.headers)).status_code == 404
    assert (await cclient.delete(f"/api/composio/connections/{account}", headers=alice.headers)).status_code == 200
    assert account not in configured.composio.accounts


async def test_secure_flags_and_bulk_delete(cclient: httpx.AsyncClient) -> None:
    user = await register_user(cclient)
    first, second = [(await create(cclient, user.headers)).json()["profile_id"] for _ in range(2)]
    gmail = (await create(cclient, user.headers, toolkit_slug="gmail")).json()["profile_id"]
    for flag in ("set-default", "set-dashboard-default"):
        await cclient.put(f"/api/composio-secure/credential-profiles/{first}/{flag}", headers=user.headers)
        moved = await cclient.put(f"/api/composio-secure/credential-profiles/{second}/{flag}", headers=user.headers)
        assert moved.status_code == 200
    profiles = {
        p["profile_id"]: p
        for p in (await cclient.get("/api/composio/profiles", headers=user.headers)).json()["profiles"]
    }
    assert (
        not profiles[first]["is_default"]
        and profiles[second]["is_default"]
        and profiles[second]["is_dashboard_default"]
    )
    toggled = await cclient.put(f"/api/composio-secure/credential-profiles/{gmail}/toggle-active", headers=user.headers)
    assert toggled.json()["is_active"] is False
    dashboard = (await cclient.get("/api/composio-secure/dashboard-profiles", headers=user.headers)).json()["profiles"]
    assert [p["profile_id"] for p in dashboard] == [second, first]
    urls = (await cclient.get("/api/composio-secure/dashboard-mcp-urls", headers=user.headers)).json()["mcp_urls"]
    assert [u["profile_id"] for u in urls] == [second]
    grouped = (await cclient.get("/api/composio-secure/composio-profiles", headers=user.headers)).json()["toolkits"]
    assert {g["toolkit_slug"]: len(g["profiles"]) for g in grouped} == {"github": 2, "gmail": 1}
    mcp = await cclient.get(f"/api/composio-secure/composio-profiles/{first}/mcp-url", headers=user.headers)
    assert mcp.json()["mcp_url"].startswith("https://mcp.composio.test/")
    bulk = await cclient.post(
        "/api/composio-secure/credential-profiles/bulk-delete",
        json={"profile_ids": [first, gmail, "junk"]},
        headers=user.headers,
    )
    assert bulk.json()["deleted_count"] == 2 and bulk.json()["not_found_ids"] == ["junk"]
    assert (
        await cclient.delete(f"/api/composio-secure/credential-profiles/{second}", headers=user.headers)
    ).status_code == 200
    assert (await cclient.get("/api/composio/profiles", headers=user.headers)).json()["profiles"] == []


async def test_profile_input_is_validated(cclient: httpx.AsyncClient) -> None:
    user = await register_user(cclient)
    pid = (await create(cclient, user.headers)).json()["profile_id"]
    cases = [
        ("POST", "/api/composio/profiles", {"profile_name": "x"}, 422),
        ("POST", "/api/composio/profiles", {"toolkit_slug": "github", "profile_name": ""}, 422),
        ("POST", "/api/composio/profiles", {"toolkit_slug": "github", "profile_name": "x" * 101}, 422),
        ("POST", "/api/composio/profiles", {"toolkit_slug": "nope", "profile_name": "x"}, 404),
        (
            "POST",
            "/api/composio/profiles",
            {"toolkit_slug": "github", "profile_name": "y", "enabled_tools": "all"},
            422,
        ),
        ("POST", "/api/composio/profiles", {"toolkit_slug": "github", "profile_name": "y", "enabled_tools": [1]}, 422),
        ("POST", "/api/composio/profiles", {"toolkit_slug": "github", "profile_name": "y", "mcp_config": []}, 422),
        ("POST", "/api/composio/profiles", {"toolkit_slug": "github", "profile_name": "y", "is_default": "yes"}, 422),
        ("PUT", f"/api/composio/profiles/{pid}", {"is_active": 1}, 422),
        ("PUT", f"/api/composio/profiles/{pid}/tools", {}, 422),
        ("PUT", f"/api/composio/profiles/{pid}/tools", {"enabled_tools": ["a b"]}, 422),
        ("PUT", f"/api/composio-secure/credential-profiles/{pid}/toggle-active", {"is_active": "no"}, 422),
        ("POST", "/api/composio-secure/credential-profiles/bulk-delete", {"profile_ids": []}, 422),
        ("POST", "/api/composio-secure/credential-profiles/bulk-delete", {"profile_ids": [1]}, 422),
        ("POST", "/api/composio-secure/credential-profiles/bulk-delete", {"profile_ids": ["a"] * 101}, 422),
    ]
    for method, path, body, status in cases:
        response = await cclient.request(method, path, json=body, headers=user.headers)
        assert response.status_code == status, (method, path, body, response.text)
    assert (await cclient.post("/api/composio/profiles", content=b"{oops", headers=user.headers)).status_code == 400
    assert (
        await cclient.get("/api/composio/profiles/check-name-availability", headers=user.headers)
    ).status_code == 422
    assert (await cclient.get("/api/composio/profiles/not-a-uuid", headers=user.headers)).status_code == 404
    assert (await cclient.get("/api/composio/connections/status/..%2Fx", headers=user.headers)).status_code == 404


async def test_catalog_answers_503_when_composio_is_not_configured(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    for path in [
        "/api/composio/health",
        "/api/composio/categories",
        "/api/composio/toolkits",
        "/api/composio/toolkits/github/details",
        "/api/composio/toolkits/github/icon",
        "/api/composio/tools/list?toolkit_slug=github",
        "/api/composio/connections",
    ]:
        response = await client.get(path, headers=user.headers)
        assert response.status_code == 503, (path, response.text)
        assert "RUNPLANE_COMPOSIO_BASE_URL" in response.json()["detail"]
    created = await client.post(
        "/api/composio/profiles", json={"toolkit_slug": "github", "profile_name": "x"}, headers=user.headers
    )
    assert created.status_code == 503
    assert (await client.get("/api/composio/profiles", headers=user.headers)).json()["profiles"] == []
