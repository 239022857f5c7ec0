"""GraphQL over HTTP details the graphql-http audit leaves open: 405 with Allow for mutations over GET (the audit
accepts any 4xx), Accept negotiation with q-values, and which errors count as request errors (4xx, no `data`
with application/graphql-response+json) versus field errors (200, `data: null`)."""

from __future__ import annotations

import httpx
import pytest

from runplane.graphql_view import negotiate_media_type
from tests.support import UserHandle

GRAPHQL_RESPONSE = "application/graphql-response+json"


async def post(
    client: httpx.AsyncClient, body: dict[str, object], accept: str, user: UserHandle | None = None
) -> httpx.Response:
    headers = {"accept": accept, **(user.headers if user else {})}
    return await client.post("/graphql", json=body, headers=headers)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, application/json;q=0.9", GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", "application/json"),  # equal q: the first listed
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", "application/json"),
        (f"application/json;q=0, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0", "application/json"),
        (f"text/html, {GRAPHQL_RESPONSE.upper()};charset=utf-8", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=junk, application/json", "application/json"),
    ],
)
def test_accept_negotiation(accept: str, expected: str) -> None:
    assert negotiate_media_type(accept) == expected


async def test_mutation_over_get_is_405_with_allow_and_does_not_run(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    mutation = 'mutation { createProject(input: {name: "via-get"}) { __typename } }'
    for accept in ("application/json", GRAPHQL_RESPONSE):
        response = await client.get("/graphql", params={"query": mutation}, headers={**alice.headers, "accept": accept})
        assert response.status_code == 405 and response.headers["allow"] == "POST", response.text
        assert "mutations are not allowed" in response.json()["detail"]
    assert (await client.get("/api/projects", headers=alice.headers)).json()["projects"] == []


async def test_request_errors_are_400_without_data_only_for_graphql_response_json(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    requests = [
        {"query": "{ me { id "},  # parse
        {"query": "{ nope }"},  # validation
        {
            "query": "query($n: Int!) { projects(first: $n) { edges { cursor } } }",
            "variables": {"n": "ten"},
        },  # coercion
    ]
    for body in requests:
        strict = await post(client, body, GRAPHQL_RESPONSE, alice)
        assert strict.status_code == 400 and strict.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8", (
            strict.text
        )
        assert "data" not in strict.json() and strict.json()["errors"], strict.text
        legacy = await post(client, body, "application/json", alice)
        assert legacy.status_code == 200 and legacy.headers["content-type"] == "application/json", legacy.text
        assert legacy.json()["data"] is None and legacy.json()["errors"]


async def test_field_errors_stay_200_with_data_under_graphql_response_json(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    unauthenticated = await post(client, {"query": "{ me { id } }"}, GRAPHQL_RESPONSE)
    assert unauthenticated.status_code == 200, unauthenticated.text
    assert (
        unauthenticated.json()["data"] is None
        and unauthenticated.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    )
    missing = await post(client, {"query": 'query { project(id: "nope") { id } }'}, GRAPHQL_RESPONSE, alice)
    assert missing.status_code == 200 and missing.json()["errors"][0]["path"] == ["project"], missing.text
    ok = await post(client, {"query": "{ me { email } }"}, GRAPHQL_RESPONSE, alice)
    assert ok.status_code == 200 and ok.json() == {"data": {"me": {"email": alice.email}}}
    assert ok.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_subscription_without_a_streaming_accept_is_a_400(
    client: httpx.AsyncClient, alice: UserHandle, method: str
) -> None:
    """A subscription needs a stream (WebSocket, SSE or multipart); over plain HTTP it is refused, not run as a
    query."""
    query = 'subscription { runEvents(runId: "QWdlbnRSdW46MQ==") { sequence } }'
    if method == "GET":
        answer = await client.get(
            "/graphql", params={"query": query}, headers={**alice.headers, "Accept": "application/json"}
        )
    else:
        answer = await client.post(
            "/graphql", json={"query": query}, headers={**alice.headers, "Accept": "application/json"}
        )
    assert answer.status_code == 400, answer.text
    assert "subscription" in answer.text.lower()
