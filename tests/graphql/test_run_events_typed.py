"""RunEvent.data types each event by its `type` (payload kept); createdAt is a DateTime like every other time.

The run and its log are made directly (a factory, not a live agent): the same events reach the typed union
through polling, lastEvents, and the subscription on both of its paths (shared fan-out and Strawberry's own).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import httpx

from runplane.events.log import append_event
from runplane.events.types import RunEventType
from runplane.models import AgentRun
from runplane.schema.ids import to_global_id
from runplane.schema.run_events import TYPED
from tests.graphql.helpers import seed, ws_execute
from tests.support import LiveServer, UserHandle, gql

DATA = """
sequence type createdAt payload
data {
  __typename
  ... on ContentEvent { content messageId }
  ... on ToolCallEvent { tool toolCallId arguments }
  ... on ToolResultEvent { tool toolCallId ok result }
  ... on StatusEvent { status error }
  ... on ErrorEvent { message }
}
"""
EXPECTED = [
    ("status", {"__typename": "StatusEvent", "status": "queued", "error": None}),
    ("content", {"__typename": "ContentEvent", "content": "Hello", "messageId": "m1"}),
    (
        "tool_call",
        {"__typename": "ToolCallEvent", "tool": "read_file", "toolCallId": "c1", "arguments": {"path": "a.txt"}},
    ),
    (
        "tool_result",
        {
            "__typename": "ToolResultEvent",
            "tool": "read_file",
            "toolCallId": "c1",
            "ok": False,
            "result": "no such file",
        },
    ),
    ("content", None),  # a payload this server cannot read: data is null, payload still there
    ("error", {"__typename": "ErrorEvent", "message": "model unavailable"}),
    ("status", {"__typename": "StatusEvent", "status": "failed", "error": "model unavailable"}),
]
PAYLOADS = [
    {"status": "queued"},
    {"content": "Hello", "message_id": "m1"},
    {"tool": "read_file", "arguments": {"path": "a.txt"}, "tool_call_id": "c1"},
    {"tool": "read_file", "result": "no such file", "tool_call_id": "c1", "ok": False},
    {"content": 42},
    {"error": "model unavailable"},
    {"status": "failed", "error": "model unavailable"},
]


async def finished_run(user: UserHandle) -> str:
    seeded = await seed(user, 1, 1, 0)
    project = seeded.projects[0]
    thread = seeded.threads[project.id][0]
    run = await AgentRun.create(
        owner_id=uuid.UUID(user.user_id), project_id=project.id, thread_id=thread.id, model="m", status="failed"
    )
    for (kind, _), payload in zip(EXPECTED, PAYLOADS, strict=True):
        await append_event(run.id, kind, payload)
    return str(to_global_id("AgentRun", run.id))


def check(events: list[dict[str, Any]]) -> None:
    assert [(e["type"], e["data"]) for e in events] == EXPECTED
    assert [e["payload"] for e in events] == PAYLOADS
    assert [e["sequence"] for e in events] == list(range(1, len(EXPECTED) + 1))
    for event in events:
        assert event["createdAt"].endswith("+00:00"), event["createdAt"]
        assert datetime.fromisoformat(event["createdAt"]).utcoffset() is not None


def test_every_event_type_has_a_typed_member() -> None:
    assert set(TYPED) == set(RunEventType)


async def test_polling_and_last_events_give_typed_data(client: httpx.AsyncClient, alice: UserHandle) -> None:
    run_id = await finished_run(alice)
    query = (
        f"query($id: ID!) {{ events(runId: $id) {{ {DATA} }} run(id: $id) {{ lastEvents(last: 20) {{ {DATA} }} }} }}"
    )
    result = await gql(client, query, {"id": run_id}, user=alice)
    assert "errors" not in result, result
    check(result["data"]["events"])
    check(result["data"]["run"]["lastEvents"])


async def test_the_subscription_gives_typed_data_on_both_paths(server: LiveServer, alice: UserHandle) -> None:
    """The shared fan-out path takes `data` (no arguments below it); a directive sends the same document
    through Strawberry's per-subscriber execution. Both answer the same."""
    run_id = await finished_run(alice)
    shared = f"subscription($id: ID!) {{ runEvents(runId: $id) {{ {DATA} }} }}"
    selection = DATA.replace("sequence", "sequence @include(if: $yes)", 1)
    plain = "subscription($id: ID!, $yes: Boolean = true) { runEvents(runId: $id) { SELECTION } }".replace(
        "SELECTION", selection
    )
    for messages in await ws_execute(server.ws_url, alice, [(shared, {"id": run_id}), (plain, {"id": run_id})]):
        assert messages[-1]["type"] == "complete", messages
        check([m["payload"]["data"]["runEvents"] for m in messages if m["type"] == "next"])


async def test_date_arguments_are_dates(client: httpx.AsyncClient, alice: UserHandle) -> None:
    query = "query($s: Date, $e: Date) { usageHistory(startDate: $s, endDate: $e) { startDate endDate } }"
    good = await gql(client, query, {"s": "2024-03-01", "e": "2024-03-02"}, user=alice)
    assert good["data"]["usageHistory"] == {"startDate": "2024-03-01", "endDate": "2024-03-02"}, good
    for bad in ("03/01/2024", "2024-02-30", "2024-03-01T00:00:00Z", 20240301):
        refused = await gql(client, query, {"s": bad}, user=alice)
        assert refused.get("data") is None and refused["errors"], refused
        assert "Date" in refused["errors"][0]["message"], refused
