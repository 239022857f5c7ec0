"""Run state and records through the documented REST surface (Cheatcode's API), on the session server:
what a run records, one active run per thread (enforced by the database), idempotent starts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import httpx

from tests.runs.helpers import (
    QUICK_PROMPT,
    assert_contiguous,
    assert_ends,
    events_after,
    get_run,
    make_thread,
    read_stream,
    start_run,
    wait_for_status,
)
from tests.support import UserHandle, gql

CONCURRENT = 8


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def thread_messages(client: httpx.AsyncClient, user: UserHandle, thread_id: str) -> list[dict[str, str]]:
    result = await gql(
        client,
        "query($id: ID!) { thread(id: $id) { messages(first: 50) { nodes { role content } } } }",
        {"id": thread_id},
        user=user,
    )
    assert "errors" not in result, result
    nodes: list[dict[str, str]] = result["data"]["thread"]["messages"]["nodes"]
    return nodes


async def test_start_answers_run_id_and_status_and_the_run_records_everything(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    thread_id = await make_thread(client, alice)
    started = await start_run(client, alice, thread_id, prompt="hello there", model="scripted/demo")
    assert set(started) >= {"agent_run_id", "status"} and started["status"] in {"queued", "running", "completed"}
    run_id = started["agent_run_id"]
    uuid.UUID(run_id)

    run = await wait_for_status(client, alice, run_id, "completed")
    assert run["id"] == run_id and run["thread_id"] == thread_id
    assert run["model"] == "scripted/demo" and run["prompt"] == "hello there" and run["error"] is None
    created, started_at, completed = (parse_time(run[k]) for k in ("created_at", "started_at", "completed_at"))
    assert created <= started_at <= completed
    usage = run["usage"]  # the scripted provider reports usage like a real one, once per model call
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    status = (await client.get(f"/api/agent-run/{run_id}/status", headers=alice.headers)).json()
    assert status["agent_run_id"] == run_id and status["status"] == "completed" and status["error"] is None

    # The prompt became the user's message of the thread; the reply its assistant message.
    messages = await thread_messages(client, alice, thread_id)
    assert [m["role"] for m in messages] == ["assistant", "user"] and messages[1]["content"] == "hello there"


async def test_default_model_and_no_prompt(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    started = await start_run(client, alice, thread_id, prompt=None)
    run = await wait_for_status(client, alice, started["agent_run_id"], "completed")
    assert run["model"] == "scripted/demo" and run["prompt"] == ""
    assert [m["role"] for m in await thread_messages(client, alice, thread_id)] == ["assistant"]


async def test_event_log_walks_the_state_machine(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    await wait_for_status(client, alice, run_id, "completed")
    events = await events_after(client, alice, run_id)
    assert_contiguous(events)
    statuses = [e["status"] for e in events if e["type"] == "status"]
    assert statuses == ["queued", "running", "completed"]
    assert any(e["type"] == "content" and e["content"] for e in events)
    # ?after= is a cursor: only later events, in order.
    later = await events_after(client, alice, run_id, after=2)
    assert [e["sequence"] for e in later] == [e["sequence"] for e in events[2:]]
    page = (
        await client.get(f"/api/agent-run/{run_id}/events", params={"after": len(events)}, headers=alice.headers)
    ).json()
    assert page == {"events": [], "last_sequence": None}
    bad = await client.get(f"/api/agent-run/{run_id}/events", params={"after": "-1"}, headers=alice.headers)
    assert bad.status_code == 422 and "detail" in bad.json()


async def test_concurrent_starts_on_one_thread_exactly_one_wins(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    responses = await asyncio.gather(
        *(
            client.post(f"/api/thread/{thread_id}/agent/start", json={"prompt": f"hi {i}"}, headers=alice.headers)
            for i in range(CONCURRENT)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (CONCURRENT - 1), [r.text for r in responses]
    assert all("detail" in r.json() for r in responses if r.status_code == 409)
    winner = next(r.json()["agent_run_id"] for r in responses if r.status_code == 200)
    await wait_for_status(client, alice, winner, "completed")

    runs = (await client.get(f"/api/thread/{thread_id}/agent-runs", headers=alice.headers)).json()["agent_runs"]
    assert [r["id"] for r in runs] == [winner]
    # Losers left nothing behind: their prompts were rolled back with their runs.
    assert sum(m["role"] == "user" for m in await thread_messages(client, alice, thread_id)) == 1
    # The thread is free again once the run ended.
    again = await start_run(client, alice, thread_id)
    await wait_for_status(client, alice, again["agent_run_id"], "completed")


async def test_idempotency_key_gives_back_the_same_run(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    key = f"key-{uuid.uuid4().hex}"
    first = await start_run(client, alice, thread_id, key=key)
    second = await start_run(client, alice, thread_id, key=key)  # active run: still not a 409
    assert second["agent_run_id"] == first["agent_run_id"]
    await wait_for_status(client, alice, first["agent_run_id"], "completed")
    third = await start_run(client, alice, thread_id, key=key)  # finished: the same run, not a new one
    assert third == {"agent_run_id": first["agent_run_id"], "status": "completed"}
    # The Idempotency-Key header works the same.
    header = await client.post(
        f"/api/thread/{thread_id}/agent/start", json={}, headers={**alice.headers, "Idempotency-Key": key}
    )
    assert header.json()["agent_run_id"] == first["agent_run_id"]
    runs = (await client.get(f"/api/thread/{thread_id}/agent-runs", headers=alice.headers)).json()["agent_runs"]
    assert len(runs) == 1


async def test_idempotent_start_under_concurrency(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    key = f"key-{uuid.uuid4().hex}"
    responses = await asyncio.gather(
        *(
            client.post(
                f"/api/thread/{thread_id}/agent/start",
                json={"prompt": QUICK_PROMPT, "idempotency_key": key},
                headers=alice.headers,
            )
            for _ in range(CONCURRENT)
        )
    )
    assert [r.status_code for r in responses] == [200] * CONCURRENT, [r.text for r in responses]
    assert len({r.json()["agent_run_id"] for r in responses}) == 1
    run_id = responses[0].json()["agent_run_id"]
    await wait_for_status(client, alice, run_id, "completed")
    assert sum(m["role"] == "user" for m in await thread_messages(client, alice, thread_id)) == 1


async def test_same_key_of_another_user_is_another_run(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    key = f"key-{uuid.uuid4().hex}"
    mine = await start_run(client, alice, await make_thread(client, alice), key=key)
    theirs = await start_run(client, bob, await make_thread(client, bob), key=key)
    assert mine["agent_run_id"] != theirs["agent_run_id"]


async def test_a_run_of_another_user_does_not_exist(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    for method, path in [
        ("GET", f"/api/agent-run/{run_id}"),
        ("GET", f"/api/agent-run/{run_id}/status"),
        ("GET", f"/api/agent-run/{run_id}/events"),
        ("GET", f"/api/agent-run/{run_id}/stream"),
        ("POST", f"/api/agent-run/{run_id}/stop"),
        ("GET", f"/api/thread/{thread_id}/agent-runs"),
        ("POST", f"/api/thread/{thread_id}/agent/start"),
        ("GET", f"/api/agent-run/{uuid.uuid4()}"),
        ("GET", "/api/agent-run/not-a-uuid"),
    ]:
        response = await client.request(method, path, headers=bob.headers)
        assert response.status_code == 404, (path, response.text)
        assert "detail" in response.json()
    unauthenticated = await client.get(f"/api/agent-run/{run_id}")
    assert unauthenticated.status_code == 401 and "detail" in unauthenticated.json()
    await wait_for_status(client, alice, run_id, "completed")


async def test_list_runs_of_a_thread_newest_first(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    ids = []
    for _ in range(3):
        run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
        await wait_for_status(client, alice, run_id, "completed")
        ids.append(run_id)
    body = (await client.get(f"/api/thread/{thread_id}/agent-runs", headers=alice.headers)).json()
    assert [r["agent_run_id"] for r in body["agent_runs"]] == ids[::-1]
    assert body["next_cursor"] is None
    first = (await client.get(f"/api/thread/{thread_id}/agent-runs", params={"limit": 2}, headers=alice.headers)).json()
    assert len(first["agent_runs"]) == 2 and first["next_cursor"]
    rest = (
        await client.get(
            f"/api/thread/{thread_id}/agent-runs",
            params={"limit": 2, "cursor": first["next_cursor"]},
            headers=alice.headers,
        )
    ).json()
    assert [r["agent_run_id"] for r in first["agent_runs"] + rest["agent_runs"]] == ids[::-1]


async def test_initiate_creates_project_thread_and_run(client: httpx.AsyncClient, alice: UserHandle) -> None:
    response = await client.post(
        "/api/agent/initiate", json={"prompt": "Build a todo app\nwith React"}, headers=alice.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"project_id", "thread_id", "agent_run_id", "status"} <= set(body)
    assert body["project"]["name"] == "Build a todo app"
    frames = await read_stream(client, body["agent_run_id"], alice.headers)
    assert_ends(frames, "completed")
    run = await get_run(client, alice, body["agent_run_id"])
    assert run["thread_id"] == body["thread_id"] and run["project_id"] == body["project_id"]
    missing = await client.post("/api/agent/initiate", json={}, headers=alice.headers)
    assert missing.status_code == 422 and "detail" in missing.json()


async def test_models_available(client: httpx.AsyncClient, alice: UserHandle) -> None:
    response = await client.get("/api/models/available", headers=alice.headers)
    assert response.status_code == 200
    models = response.json()["models"]
    scripted = next(m for m in models if m["id"] == "scripted/demo")
    assert scripted["default"] is True and scripted["provider"] == "scripted"
    # Public, as in the original (Cheatcode's web app sends no token): the catalogue is the same for everyone.
    anonymous = await client.get("/api/models/available")
    assert anonymous.status_code == 200 and anonymous.json() == response.json()


async def test_stop_of_a_finished_run_changes_nothing(client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    await wait_for_status(client, alice, run_id, "completed")
    stopped = await client.post(f"/api/agent-run/{run_id}/stop", headers=alice.headers)
    assert stopped.status_code == 200 and stopped.json()["status"] == "completed"
    assert (await events_after(client, alice, run_id))[-1]["status"] == "completed"
    for verb in ("pause", "resume"):
        refused = await client.post(f"/api/agent-run/{run_id}/{verb}", headers=alice.headers)
        assert refused.status_code == 409 and "detail" in refused.json()
