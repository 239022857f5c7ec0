"""Previews into each sandbox's network namespace, through a real `runplane serve`: two users' dev servers both
listen on 3000 (started without dev_server, ignoring PORT, as `pnpm dev` does) and each preview shows its own;
a sandbox that binds the same port never answers for another's preview, also once the victim's server is gone;
8081 (Expo) and any chosen port work; nothing listening is a clear 404 (no session) or 502, a bad port a 422 naming it."""

from __future__ import annotations

import asyncio
import json
import os

import httpx
import pytest

from tests.sandbox_api.helpers import execute, new_sandbox
from tests.sandbox_api.test_preview import upload
from tests.support import UserHandle, gql

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces are made as root")


def serve(port: int) -> str:
    return f"python3 -m http.server {port} --bind 127.0.0.1"


async def preview_when_listening(
    client: httpx.AsyncClient, user: UserHandle, sid: str, port: int, **params: str
) -> str:
    """The preview URL once the server listens on `port` (until then the link names the session's PORT)."""
    async with asyncio.timeout(30):
        while True:
            response = await client.get(f"/api/sandboxes/{sid}/preview-url", params=params, headers=user.headers)
            assert response.status_code == 200, response.text
            if response.json()["port"] == port:
                return str(response.json()["url"])
            await asyncio.sleep(0.2)


async def page(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.get(url + "index.html")


async def start(client: httpx.AsyncClient, user: UserHandle, sid: str, text: str, port: int, name: str) -> None:
    await upload(client, user, sid, {"index.html": text.encode()})
    started = await execute(client, user, sid, serve(port), blocking=False, session_name=name)
    assert started["status"] == "running", started


async def test_two_sandboxes_on_3000_each_get_their_own_preview(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    _, mine = await new_sandbox(client, alice, "mine")
    _, theirs = await new_sandbox(client, bob, "theirs")
    await start(client, alice, mine, "alice's app", 3000, "web")
    await start(client, bob, theirs, "bob's app", 3000, "web")
    mine_url = await preview_when_listening(client, alice, mine, 3000)
    theirs_url = await preview_when_listening(client, bob, theirs, 3000)
    assert (await page(client, mine_url)).text == "alice's app"
    assert (await page(client, theirs_url)).text == "bob's app"

    # The victim's server goes away: its preview answers 502, never the other sandbox's page on the same port.
    stopped = await client.post(f"/api/sandboxes/{mine}/sessions/web/stop", headers=alice.headers)
    assert stopped.status_code == 200, stopped.text
    async with asyncio.timeout(20):
        while (answer := await page(client, mine_url)).status_code == 200:
            assert answer.text == "alice's app"
            await asyncio.sleep(0.2)
    assert answer.status_code == 502 and "bob" not in answer.text
    assert (await page(client, theirs_url)).text == "bob's app"


async def test_expo_port_chosen_port_and_errors(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice, "expo")
    missing = await client.get(f"/api/sandboxes/{sid}/preview-url", headers=alice.headers)
    assert missing.status_code == 404 and "3000" in missing.text  # no session, nothing on 3000
    for bad in ("0", "70000", "abc", "٣", "3128"):  # 3128: runplane's egress proxy inside the namespace
        refused = await client.get(f"/api/sandboxes/{sid}/preview-url", params={"port": bad}, headers=alice.headers)
        assert refused.status_code == 422 and refused.json()["field"] == "port", (bad, refused.text)
    await start(client, alice, sid, "metro", 8081, "metro")
    async with asyncio.timeout(30):
        while (expo := await client.get(f"/api/sandboxes/{sid}/expo-url", headers=alice.headers)).json()[
            "port"
        ] != 8081:
            await asyncio.sleep(0.2)
    assert expo.status_code == 200 and expo.json()["url"].startswith("exp://")
    chosen = await client.get(f"/api/sandboxes/{sid}/preview-url", params={"port": "8081"}, headers=alice.headers)
    assert chosen.status_code == 200 and chosen.json()["port"] == 8081
    assert (await page(client, chosen.json()["url"])).text == "metro"
    elsewhere = await client.get(f"/api/sandboxes/{sid}/preview-url", params={"port": "5432"}, headers=alice.headers)
    assert (await page(client, elsewhere.json()["url"])).status_code == 502  # its own 5432: nothing, not PostgreSQL


async def test_graphql_preview_url_takes_a_port(client: httpx.AsyncClient, alice: UserHandle) -> None:
    _, sid = await new_sandbox(client, alice, "gql")
    await start(client, alice, sid, "on 8081", 8081, "web")
    query = "query($s: ID!, $p: Int) { previewUrl(sandboxId: $s, port: $p) { url port sessionName } }"
    answer = await gql(client, query, {"s": sid, "p": 8081}, user=alice)
    link = answer["data"]["previewUrl"]
    assert link["port"] == 8081 and link["sessionName"] == ""
    async with asyncio.timeout(30):
        while (await page(client, link["url"])).status_code != 200:
            await asyncio.sleep(0.2)
    assert (await page(client, link["url"])).text == "on 8081"
    refused = await gql(client, query, {"s": sid, "p": 70000}, user=alice)
    assert not (refused["data"] or {}).get("previewUrl") and "port" in json.dumps(refused["errors"])
