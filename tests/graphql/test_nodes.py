"""Cache identity: Query.node/nodes refetch the caller's objects by global id (another user's is null, as is a
malformed id), and the singletons Apollo caches (billing status, subscription, a run's usage) have stable ids."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from runplane.models import AgentRun
from runplane.schema.ids import to_global_id
from tests.graphql.helpers import seed
from tests.support import UserHandle, gql

NODE = """query($id: ID!) { node(id: $id) { __typename id
  ... on Project { name } ... on Thread { title } ... on Message { content } ... on AgentRun { status }
  ... on User { email } } }"""


async def objects_of(user: UserHandle) -> dict[str, Any]:
    seeded = await seed(user, 1, 1, 1, tag="n")
    project = seeded.projects[0]
    thread = seeded.threads[project.id][0]
    message = seeded.messages[thread.id][0]
    run = await AgentRun.create(
        owner_id=uuid.UUID(user.user_id), project_id=project.id, thread_id=thread.id, model="m", status="completed"
    )
    return {
        "Project": (to_global_id("Project", project.id), {"name": "np0"}),
        "Thread": (to_global_id("Thread", thread.id), {"title": "np0-t0"}),
        "Message": (to_global_id("Message", message.id), {"content": "np0-t0-m0"}),
        "AgentRun": (to_global_id("AgentRun", run.id), {"status": "completed"}),
        "User": (to_global_id("User", user.user_id), {"email": user.email}),
    }


async def test_node_refetches_each_kind_for_its_owner_only(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    for type_name, (node_id, fields) in (await objects_of(alice)).items():
        found = (await gql(client, NODE, {"id": node_id}, user=alice))["data"]["node"]
        assert found == {"__typename": type_name, "id": node_id, **fields}, (type_name, found)
        foreign = await gql(client, NODE, {"id": node_id}, user=bob)
        assert foreign == {"data": {"node": None}}, (type_name, foreign)


async def test_nodes_keeps_order_and_nulls_what_is_not_the_callers(
    client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle
) -> None:
    mine = await objects_of(alice)
    theirs = await objects_of(bob)
    ids = [
        mine["Thread"][0],
        theirs["Project"][0],
        "garbage",
        to_global_id("Nope", uuid.uuid4()),
        to_global_id("Project", uuid.uuid4()),
        mine["Project"][0],
    ]
    result = await gql(client, "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }", {"ids": ids}, user=alice)
    assert result["data"]["nodes"] == [
        {"__typename": "Thread", "id": ids[0]},
        None,
        None,
        None,
        None,
        {"__typename": "Project", "id": ids[5]},
    ]
    too_many = await gql(client, "query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids * 20}, user=alice)
    assert too_many["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    anonymous = await gql(client, NODE, {"id": mine["Project"][0]})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_singletons_have_stable_ids(client: httpx.AsyncClient, alice: UserHandle, bob: UserHandle) -> None:
    run_id = (await objects_of(alice))["AgentRun"][0]
    query = "query($run: ID!) { billingStatus { id } subscription { id } run(id: $run) { usage { id } } }"
    first = (await gql(client, query, {"run": run_id}, user=alice))["data"]
    again = (await gql(client, query, {"run": run_id}, user=alice))["data"]
    assert first == again
    assert len({first["billingStatus"]["id"], first["subscription"]["id"], first["run"]["usage"]["id"]}) == 3
    other = (await gql(client, "{ billingStatus { id } subscription { id } }", user=bob))["data"]
    assert other["billingStatus"]["id"] != first["billingStatus"]["id"]
    assert other["subscription"]["id"] != first["subscription"]["id"]
