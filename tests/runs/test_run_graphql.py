"""The runEvents subscription through real clients (graphql-ws under node, the legacy subprotocol,
multipart HTTP, GraphQL over SSE), and pause/resume/stop through GraphQL mutations."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.runs.clients import graphql_sse_subscribe, legacy_subscribe, multipart_subscribe, node_subscribe
from tests.runs.helpers import LONG_PROMPT, assert_contiguous, events_after, make_thread, start_run, wait_for_status
from tests.runs.procs import Process
from tests.support import LiveServer, UserHandle, gql

CONTROL = """
mutation($id: ID!) { %s(id: $id) {
  __typename
  ... on AgentRunPayload { agentRun { id status } }
  ... on UserError { code message }
} }
"""


def statuses(events: list[dict[str, Any]]) -> list[str]:
    return [e["payload"]["status"] for e in events if e["type"] == "status"]


def as_log(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """REST /events frames reshaped like the subscription's {sequence, type, payload}."""
    out = []
    for e in events:
        payload = {k: v for k, v in e.items() if k not in {"type", "sequence", "created_at"}}
        out.append({"sequence": e["sequence"], "type": e["type"], "payload": payload})
    return out


async def control(client: httpx.AsyncClient, user: UserHandle, verb: str, run_id: str) -> dict[str, Any]:
    result = await gql(client, CONTROL % verb, {"id": run_id}, user=user)
    assert "errors" not in result, result
    data: dict[str, Any] = result["data"][verb]
    return data


async def test_node_graphql_ws_client_follows_a_live_run(
    tuned: Process, tuned_client: httpx.AsyncClient, carol: UserHandle
) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    lines, code = await node_subscribe(tuned.ws_url, carol.access_token, run_id)
    assert code == 0, lines
    assert lines[0] == {"connected": True} and lines[-1] == {"complete": True}
    events = lines[1:-1]
    assert_contiguous([{"sequence": e["sequence"]} for e in events])
    assert statuses(events) == ["queued", "running", "completed"]
    assert sum(e["type"] == "content" for e in events) > 3  # streamed live, word by word
    assert events == as_log(await events_after(tuned_client, carol, run_id))


async def test_node_graphql_ws_client_resumes_after_a_cursor(
    server: LiveServer, client: httpx.AsyncClient, alice: UserHandle
) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    await wait_for_status(client, alice, run_id, "completed")
    everything = as_log(await events_after(client, alice, run_id))
    lines, code = await node_subscribe(server.ws_url, alice.access_token, run_id, after=2)
    assert code == 0 and lines[-1] == {"complete": True}, lines
    assert lines[1:-1] == everything[2:]


async def test_node_graphql_ws_client_is_refused_without_a_valid_token(
    server: LiveServer, client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    lines, code = await node_subscribe(server.ws_url, "not-a-token", run_id, timeout=15)
    assert code == 2 and lines[-1].get("code") == 4403, lines
    # Another user's run: a GraphQL NOT_FOUND error, not its events.
    lines, code = await node_subscribe(server.ws_url, bob.access_token, run_id, timeout=15)
    assert code == 2, lines
    assert lines[-1]["errors"][0]["extensions"]["code"] == "NOT_FOUND", lines


async def test_legacy_protocol_with_pause_resume_and_stop_by_mutations(
    tuned: Process, tuned_client: httpx.AsyncClient, carol: UserHandle
) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    steps: list[str] = []

    async def drive(event: dict[str, Any]) -> None:
        status = event["payload"].get("status") if event["type"] == "status" else None
        if event["type"] == "content" and not steps:
            steps.append("pause")
            paused = await control(tuned_client, carol, "pauseRun", run_id)
            assert paused["agentRun"]["status"] == "paused", paused
            again = await control(tuned_client, carol, "pauseRun", run_id)
            assert again["__typename"] == "ConflictError" and again["code"] == "CONFLICT", again
        elif status == "paused":
            steps.append("resume")
            assert (await control(tuned_client, carol, "resumeRun", run_id))["agentRun"]["status"] == "running"
        elif status == "running" and "resume" in steps and "stop" not in steps:
            steps.append("stop")
            stopped = await control(tuned_client, carol, "stopRun", run_id)
            # stopRun answers with the status the stop led to, not the `running` of the moment it was sent
            assert stopped["__typename"] == "AgentRunPayload" and stopped["agentRun"]["status"] == "stopped", stopped

    events = await legacy_subscribe(tuned.ws_url, carol.access_token, run_id, on_event=drive)
    assert steps == ["pause", "resume", "stop"]
    assert_contiguous([{"sequence": e["sequence"]} for e in events])
    assert statuses(events) == ["queued", "running", "paused", "running", "stopped"]
    result = await gql(
        tuned_client, "query($id: ID!) { run(id: $id) { status completedAt finishedAt } }", {"id": run_id}, user=carol
    )
    run = result["data"]["run"]
    assert run["status"] == "stopped" and run["completedAt"]
    assert run["finishedAt"] == run["completedAt"], "the deprecated name answers as before"
    refused = await control(tuned_client, carol, "resumeRun", run_id)
    assert refused["__typename"] == "ConflictError", refused


async def test_multipart_http_subscription(server: LiveServer, client: httpx.AsyncClient, alice: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    events, _ = await multipart_subscribe(client, alice.access_token, run_id)
    assert statuses(events)[-1] == "completed"
    assert events == as_log(await events_after(client, alice, run_id))


async def test_multipart_http_subscription_of_a_live_run(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    events, _ = await multipart_subscribe(tuned_client, carol.access_token, run_id, after=1)
    assert events[0]["sequence"] == 2
    assert statuses(events) == ["running", "completed"]


async def test_graphql_over_sse(tuned_client: httpx.AsyncClient, carol: UserHandle) -> None:
    thread_id = await make_thread(tuned_client, carol)
    run_id = (await start_run(tuned_client, carol, thread_id, prompt=LONG_PROMPT))["agent_run_id"]
    events = await graphql_sse_subscribe(tuned_client, carol.access_token, run_id)
    assert_contiguous([{"sequence": e["sequence"]} for e in events])
    assert statuses(events) == ["queued", "running", "completed"]
    assert events == as_log(await events_after(tuned_client, carol, run_id))


async def test_http_subscriptions_need_the_owner(client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle) -> None:
    thread_id = await make_thread(client, alice)
    run_id = (await start_run(client, alice, thread_id))["agent_run_id"]
    body = {"query": "subscription($id: ID!) { runEvents(runId: $id) { sequence } }", "variables": {"id": run_id}}
    response = await client.post("/graphql", json=body, headers={**bob.headers, "Accept": "text/event-stream"})
    assert response.status_code == 200
    assert '"NOT_FOUND"' in response.text and '"sequence"' not in response.text
    await asyncio.wait_for(wait_for_status(client, alice, run_id, "completed"), 20)
