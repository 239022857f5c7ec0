"""Content negotiation on /graphql: queries and mutations get JSON whenever the Accept header admits JSON (urql
and Apollo list stream types beside the JSON ones), subscriptions stream over SSE or multipart, SSE frames end
in `\\n` (urql splits events on `\\n\\n`), and a subscription asked for without a streaming Accept gets a clear
GraphQL-shaped 400."""

from __future__ import annotations

import json

import httpx
import pytest
from strawberry.types.graphql import OperationType

from runplane.graphql_media import OperationTypes, accepts_json
from tests.streams.helpers import graphql_socket, next_message
from tests.support import LiveServer, UserHandle

URQL_ACCEPT = (
    "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"
)
URQL_SUBSCRIPTION_ACCEPT = "text/event-stream, multipart/mixed"
APOLLO_ACCEPT = "multipart/mixed;deferSpec=20220824,application/graphql-response+json,application/json;q=0.9"
APOLLO_SUBSCRIPTION_ACCEPT = 'multipart/mixed;boundary="graphql";subscriptionSpec=1.0,application/json'
ME = "query Me { me { id } }"
MISSING_RUN = 'subscription Missing { runEvents(runId: "UnJ1bjpub3Qtb25l") { sequence } }'
DELETE = 'mutation Delete { deleteProject(id: "UHJvamVjdDpub25l") { __typename } }'


async def post(client: httpx.AsyncClient, user: UserHandle, query: str, accept: str) -> httpx.Response:
    return await client.post("/graphql", json={"query": query}, headers={**user.headers, "Accept": accept})


@pytest.mark.parametrize("accept", [URQL_ACCEPT, APOLLO_ACCEPT, "*/*", "text/event-stream, application/json;q=0.1"])
async def test_queries_get_json_whenever_json_is_accepted(
    client: httpx.AsyncClient, alice: UserHandle, accept: str
) -> None:
    answer = await post(client, alice, ME, accept)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].split(";")[0] in ("application/json", "application/graphql-response+json")
    assert answer.json()["data"]["me"]["id"]


async def test_mutations_get_json_with_urqls_accept(client: httpx.AsyncClient, alice: UserHandle) -> None:
    answer = await post(client, alice, DELETE, URQL_ACCEPT)
    assert answer.headers["content-type"].startswith("application/graphql-response+json"), answer.text
    assert answer.json()["data"]["deleteProject"]["__typename"], answer.text  # a typed error, as data


@pytest.mark.parametrize("accept", ["text/event-stream", "application/json;q=0, text/event-stream"])
async def test_clients_that_accept_only_a_stream_get_sse_framed_with_line_feeds(
    client: httpx.AsyncClient, alice: UserHandle, accept: str
) -> None:
    answer = await post(client, alice, ME, accept)
    assert answer.headers["content-type"].startswith("text/event-stream"), answer.text
    assert "\r" not in answer.text
    events = answer.text.split("\n\n")
    assert events[0].startswith("event: next\ndata: {") and '"me"' in events[0], answer.text
    assert events[1] == "event: complete\ndata: " and events[2] == "", answer.text


async def test_subscriptions_stream_over_sse_with_urqls_accept(client: httpx.AsyncClient, alice: UserHandle) -> None:
    answer = await post(client, alice, MISSING_RUN, URQL_SUBSCRIPTION_ACCEPT)
    assert answer.headers["content-type"].startswith("text/event-stream"), answer.text
    assert "\r" not in answer.text and answer.text.endswith("event: complete\ndata: \n\n"), answer.text
    assert '"code":"NOT_FOUND"' in answer.text  # the subscription ran (and found no such run)


async def test_subscriptions_stream_over_multipart_with_apollos_accept(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    answer = await post(client, alice, MISSING_RUN, APOLLO_SUBSCRIPTION_ACCEPT)
    assert answer.headers["content-type"].startswith("multipart/mixed"), answer.text
    assert '"code":"NOT_FOUND"' in answer.text and answer.text.endswith("--graphql--\r\n")


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("accept", ["application/json", "application/graphql-response+json", "*/*"])
async def test_a_subscription_without_a_streaming_accept_is_refused_clearly(
    client: httpx.AsyncClient, alice: UserHandle, method: str, accept: str
) -> None:
    headers = {**alice.headers, "Accept": accept}
    if method == "POST":
        answer = await client.post("/graphql", json={"query": MISSING_RUN}, headers=headers)
    else:
        answer = await client.get("/graphql", params={"query": MISSING_RUN}, headers=headers)
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()["errors"]
    assert error["extensions"]["code"] == "SUBSCRIPTION_NEEDS_A_STREAM"
    assert "text/event-stream" in error["message"] and "multipart/mixed" in error["message"]


def test_accepts_json() -> None:
    assert accepts_json("") and accepts_json(URQL_ACCEPT) and accepts_json(APOLLO_ACCEPT) and accepts_json("*/*")
    assert accepts_json("application/*;q=0.5, text/event-stream")
    assert not accepts_json("text/event-stream") and not accepts_json("text/event-stream, multipart/mixed")
    assert not accepts_json("application/json;q=0, text/event-stream") and not accepts_json("text/html")


def test_operation_types() -> None:
    types = OperationTypes(max_chars=1000, max_tokens=100)
    both = "query A { me { id } } subscription B { runEvents(runId: 1) { sequence } }"
    assert types.of(both, "A") is OperationType.QUERY and types.of(both, "B") is OperationType.SUBSCRIPTION
    assert types.of(both, None) is None and types.of(both, "C") is None  # execution says why
    assert (
        types.of("{ me { id } }", None) is OperationType.QUERY and types.of("mutation { x }", None).value == "mutation"
    )  # type: ignore[union-attr]
    assert types.of("{ me { ", None) is None and types.of(None, None) is None
    assert types.of("{ a " + "b " * 200 + "}", None) is None  # over max_tokens: not parsed here
    assert types.of("{ me { id } }" + " " * 1000, None) is None  # over max_chars


MALFORMED = [
    {"extensions": {"persistedQuery": None}},
    {"query": "{ __typename }", "operationName": 7},
    {"query": "{ __typename }", "operationName": ["x"]},
    {"query": 5, "extensions": {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}},
    {"query": "{ __typename }", "extensions": []},
]


@pytest.mark.parametrize("body", MALFORMED)
@pytest.mark.parametrize("accept", ["application/json", "text/event-stream"])
async def test_malformed_requests_are_400s_on_every_transport(
    client: httpx.AsyncClient, alice: UserHandle, body: dict[str, object], accept: str
) -> None:
    answer = await client.post("/graphql", json=body, headers={**alice.headers, "Accept": accept})
    assert answer.status_code == 400, answer.text
    assert "INTERNAL_SERVER_ERROR" not in answer.text


async def test_malformed_websocket_operations_get_errors_and_the_socket_stays(
    server: LiveServer, alice: UserHandle
) -> None:
    async with graphql_socket(server.ws_url, alice.access_token) as ws:
        for n, body in enumerate(MALFORMED):
            await ws.send(json.dumps({"id": str(n), "type": "subscribe", "payload": body}))
            answer = await next_message(ws, str(n))
            assert answer["type"] == "error" and answer["payload"][0]["extensions"]["code"] == "BAD_REQUEST", answer
        await ws.send(json.dumps({"id": "ok", "type": "subscribe", "payload": {"query": ME}}))
        assert (await next_message(ws, "ok"))["type"] == "next"
