"""Bring your own key: stored encrypted, shown masked, tested against the key endpoint, used for the owner's runs."""

from __future__ import annotations

import uuid

import httpx
import pytest

from runplane.billing.crypto import DecryptionFailed, secret_box
from runplane.models import UserModelKey
from tests.billing.conftest import USER_MODEL_KEY, BillingServer, make_thread, run_to_end, status_of
from tests.fakes.openai_server import Turn
from tests.support import LiveServer, UserHandle, register_user

KEY_URL = "/api/billing/openrouter-key"


async def store(client: httpx.AsyncClient, user: UserHandle, key: object = USER_MODEL_KEY) -> httpx.Response:
    return await client.post(KEY_URL, json={"api_key": key}, headers=user.headers)


async def test_key_is_stored_masked_and_removable(bclient: httpx.AsyncClient) -> None:
    user = await register_user(bclient)
    assert (await bclient.get(f"{KEY_URL}/status", headers=user.headers)).json()["configured"] is False
    stored = await store(bclient, user)
    assert stored.status_code == 200, stored.text
    assert (
        stored.json()["configured"] is True and stored.json()["hint"] == f"{USER_MODEL_KEY[:6]}...{USER_MODEL_KEY[-4:]}"
    )
    status = await bclient.get(f"{KEY_URL}/status", headers=user.headers)
    assert (
        status.json()["configured"] is True
        and USER_MODEL_KEY not in status.text
        and USER_MODEL_KEY[6:-4] not in status.text
    )
    assert (await status_of(bclient, user))["byok_key_configured"] is True
    deleted = await bclient.delete(KEY_URL, headers=user.headers)
    assert deleted.json() == {"deleted": True, "success": True}
    assert (await bclient.delete(KEY_URL, headers=user.headers)).json() == {"deleted": False, "success": True}
    assert (await bclient.get(f"{KEY_URL}/status", headers=user.headers)).json()["configured"] is False


async def test_key_input_is_validated(bclient: httpx.AsyncClient) -> None:
    user = await register_user(bclient)
    for bad in (
        None,
        12,
        "short",
        "sk-or-v1-with space inside-0000",
        "x" * 513,
        "sk-or-v1-ünicode-000000000",
        ["sk-or-v1-" + "a" * 40],
    ):
        response = await store(bclient, user, bad)
        assert response.status_code == 422, (bad, response.text)
    assert (await bclient.post(KEY_URL, content=b"nope", headers=user.headers)).status_code == 400
    assert (await bclient.post(KEY_URL, json={"api_key": USER_MODEL_KEY})).status_code == 401


async def test_key_test_against_the_key_endpoint(bclient: httpx.AsyncClient, billing: BillingServer) -> None:
    user = await register_user(bclient)
    missing = await bclient.post(f"{KEY_URL}/test", headers=user.headers)
    assert missing.status_code == 404
    await store(bclient, user)
    tested = await bclient.post(f"{KEY_URL}/test", headers=user.headers)
    assert tested.status_code == 200, tested.text
    assert tested.json()["valid"] is True and tested.json()["source"] == "stored" and tested.json()["limit"] == 10.0
    assert (
        billing.model.requests[-1].path == "/v1/key"
        and billing.model.requests[-1].authorization == f"Bearer {USER_MODEL_KEY}"
    )
    assert (await bclient.get(f"{KEY_URL}/status", headers=user.headers)).json()["last_test_status"] == "ok"
    wrong = await bclient.post(f"{KEY_URL}/test", json={"api_key": "sk-or-v1-" + "0" * 40}, headers=user.headers)
    assert wrong.status_code == 200 and wrong.json() == {
        **wrong.json(),
        "valid": False,
        "status": "invalid",
        "source": "provided",
    }
    billing.model.fail_next(503, times=2)
    down = await bclient.post(f"{KEY_URL}/test", headers=user.headers)
    assert down.status_code == 503


async def test_runs_use_the_owners_key_and_spend_no_allowance(
    bclient: httpx.AsyncClient, billing: BillingServer
) -> None:
    owner, other = await register_user(bclient), await register_user(bclient)
    thread_id = await make_thread(bclient, owner)
    assert (await run_to_end(bclient, owner, thread_id))[
        "status"
    ] == "completed"  # a scripted run spends the tiny allowance
    assert (await status_of(bclient, owner))["can_run"] is False
    refused = await bclient.post(
        f"/api/thread/{thread_id}/agent/start", json={"model": "openai/gpt-4o-mini"}, headers=owner.headers
    )
    assert refused.status_code == 402

    await store(bclient, owner)
    before = await status_of(bclient, owner)
    assert before["can_run"] is True
    billing.model.add_turn(Turn(content=["Hi ", "from ", "your key"]))
    run = await run_to_end(bclient, owner, thread_id, model="openai/gpt-4o-mini")
    assert run["status"] == "completed", run
    assert billing.model.chat_requests()[-1].authorization == f"Bearer {USER_MODEL_KEY}"
    after = await status_of(bclient, owner)
    assert after["tokens_used"] == before["tokens_used"]  # paid through the user's own key
    today = (await bclient.get("/api/billing/usage-history", headers=owner.headers)).json()["days"][-1]
    assert today["runs"] == 2 and today["total_tokens"] > today["platform_tokens"]
    # Scripted models never use the key: still refused on the spent allowance.
    assert (
        await bclient.post(f"/api/thread/{thread_id}/agent/start", json={}, headers=owner.headers)
    ).status_code == 402

    # Another user's run does not get the owner's key: the model server refuses the platform key.
    other_thread = await make_thread(bclient, other)
    failed = await run_to_end(bclient, other, other_thread, model="openai/gpt-4o-mini")
    assert failed["status"] == "failed" and "401" in failed["error"]
    assert (await bclient.get(f"{KEY_URL}/status", headers=other.headers)).json()["configured"] is False


async def test_key_is_encrypted_at_rest(
    client: httpx.AsyncClient, server: LiveServer, alice: UserHandle, bob: UserHandle
) -> None:
    assert (await store(client, alice)).status_code == 200
    row = await UserModelKey.get(user_id=alice.user_id)
    assert USER_MODEL_KEY not in row.ciphertext and row.ciphertext.startswith("v2:")
    box = secret_box(server.settings)
    assert box.decrypt(row.ciphertext, f"runplane:model-key:{alice.user_id}:openrouter") == USER_MODEL_KEY
    with pytest.raises(DecryptionFailed):  # bound to its owner: useless on another user's row
        box.decrypt(row.ciphertext, f"runplane:model-key:{bob.user_id}:openrouter")
    assert (server.settings.data_dir / "encryption-key").exists()
    # A ciphertext moved onto bob's row is not used for bob.
    await UserModelKey.create(
        user_id=uuid.UUID(bob.user_id), provider="openrouter", ciphertext=row.ciphertext, hint=row.hint
    )
    tested = await client.post(f"{KEY_URL}/test", headers=bob.headers)
    assert tested.status_code == 409
