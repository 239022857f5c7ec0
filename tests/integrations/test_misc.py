"""Feature flags, the welcome email through a local SMTP server, and /api/inngest (run queue introspection)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.api.spawn import spawned_server
from tests.conftest import ADMIN_API_KEY
from tests.integrations.conftest import SMTP_USER, Configured
from tests.support import register_user, test_redis_url


async def test_feature_flags_when_enabled(cclient: httpx.AsyncClient) -> None:
    user = await register_user(cclient)
    flags = await cclient.get("/api/feature-flags", headers=user.headers)
    assert flags.status_code == 200 and flags.json()["flags"] == {"custom_agents": True, "mobile_preview": False}
    one = await cclient.get("/api/feature-flags/mobile_preview", headers=user.headers)
    assert one.json() == {
        "name": "mobile_preview",
        "flag_name": "mobile_preview",
        "enabled": False,
        "description": "Expo previews",
        "details": {"description": "Expo previews"},
    }
    assert (await cclient.get("/api/feature-flags/nope", headers=user.headers)).status_code == 404
    assert (await cclient.get("/api/feature-flags/" + "x" * 101, headers=user.headers)).status_code == 422
    # Public, as in the original: server-wide switches, the same for every caller.
    assert (await cclient.get("/api/feature-flags")).json() == flags.json()


async def test_feature_flags_are_404_when_disabled(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    assert (await client.get("/api/feature-flags", headers=user.headers)).status_code == 404
    assert (await client.get("/api/feature-flags/custom_agents", headers=user.headers)).status_code == 404
    assert (await client.get("/api/feature-flags")).status_code == 404


async def test_welcome_email_is_sent_once_unless_forced(cclient: httpx.AsyncClient, configured: Configured) -> None:
    user = await register_user(cclient)

    def mine():
        return [m for m in configured.smtp.messages if m.recipients == [user.email]]

    first = await cclient.post("/api/send-welcome-email", json={"name": "Ada"}, headers=user.headers)
    assert first.status_code == 200, first.text
    assert first.json()["sent"] is True and first.json()["recipient"] == user.email
    [mail] = mine()
    assert mail.auth == SMTP_USER and mail.message["Subject"] == "Welcome to runplane"
    assert mail.message["To"] == f"Ada <{user.email}>" and "Hi Ada," in mail.message.get_payload()
    again = await asyncio.gather(*[cclient.post("/api/send-welcome-email", headers=user.headers) for _ in range(4)])
    assert all(r.status_code == 200 and r.json()["sent"] is False and r.json()["already_sent"] for r in again)
    assert len(mine()) == 1
    forced = await cclient.post("/api/send-welcome-email", json={"force": True}, headers=user.headers)
    assert forced.json()["sent"] is True and forced.json()["send_count"] == 2 and len(mine()) == 2


async def test_welcome_email_concurrent_first_sends_once(cclient: httpx.AsyncClient, configured: Configured) -> None:
    user = await register_user(cclient)
    results = await asyncio.gather(*[cclient.post("/api/send-welcome-email", headers=user.headers) for _ in range(5)])
    assert all(r.status_code == 200 for r in results)
    assert sum(r.json()["sent"] for r in results) == 1
    assert len([m for m in configured.smtp.messages if m.recipients == [user.email]]) == 1


async def test_welcome_email_input_and_configuration(cclient: httpx.AsyncClient, client: httpx.AsyncClient) -> None:
    user = await register_user(cclient)
    for body in ({"force": "yes"}, {"name": 5}, {"name": "x" * 101}):
        assert (await cclient.post("/api/send-welcome-email", json=body, headers=user.headers)).status_code == 422, body
    assert (await cclient.post("/api/send-welcome-email", content=b"[", headers=user.headers)).status_code == 400
    assert (await cclient.post("/api/send-welcome-email")).status_code == 401
    other = await register_user(client)
    unconfigured = await client.post("/api/send-welcome-email", headers=other.headers)
    assert unconfigured.status_code == 503 and "RUNPLANE_SMTP_HOST" in unconfigured.json()["detail"]


async def test_inngest_serves_run_queue_introspection_to_admins(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    assert (await client.get("/api/inngest")).status_code == 401
    assert (await client.get("/api/inngest", headers=user.headers)).status_code == 403
    response = await client.get("/api/inngest", headers={"X-API-Key": ADMIN_API_KEY})
    assert response.status_code == 200, response.text
    info = response.json()
    assert info["backend"] == "inprocess" and set(info["database"]) == {"queued", "running", "paused"}
    assert isinstance(info["in_process_tasks"], int)


async def test_inngest_reports_arq_queue(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not test_redis_url():
        pytest.skip("RUNPLANE_TEST_REDIS_URL is not set")
    tmp = tmp_path_factory.mktemp("runplane-arq-info")
    async with spawned_server(
        tmp, ADMIN_API_KEY=ADMIN_API_KEY, REDIS_URL=test_redis_url() or "", RUN_QUEUE="arq"
    ) as server:
        http = httpx.AsyncClient(base_url=server.base_url, timeout=10)
        try:
            info = (await http.get("/api/inngest", headers={"X-API-Key": ADMIN_API_KEY})).json()
        finally:
            await http.aclose()
    assert (
        info["backend"] == "arq"
        and info["arq"]["queue"] == "runplane:runs"
        and isinstance(info["arq"]["queued_jobs"], int)
    )
