"""GraphQL abuse over real HTTP: directive and field overloading, fragment cycles and bombs,
deep documents, many operations, batches, huge documents and variables. Each is refused with a clear
error, before validation's costly rules and before any resolver (refused mutations create nothing).
bench/bench_graphql_abuse.py measures what refusing costs; these tests do not time anything."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from runplane.config import Settings
from runplane.schema import build_schema
from runplane.schema.limits import Limits, variable_errors
from tests.graphql.helpers import ws_execute
from tests.graphql.test_hardening import project_names, refused
from tests.support import LiveServer, UserHandle, gql

VALIDATION = "GRAPHQL_VALIDATION_FAILED"
NO_CONTEXT = SimpleNamespace(ctx=None)  # in-process operations that are refused before any resolver needs one


def with_mutation(name: str, selection: str, *, fragments: str = "") -> str:
    """A createProject mutation carrying `selection` in its payload: a project named `name` means it ran."""
    return f'mutation {{ createProject(input: {{name: "{name}"}}) {{ ... on ProjectPayload {{ {selection} }} }} }} {fragments}'


def refused_once(result: dict[str, Any], code: str, message: str) -> None:
    """Refused with one error: the limit stopped the document before graphql-core listed its complaints."""
    refused(result, code, message)
    assert len(result["errors"]) == 1, result


async def test_directive_overload_is_refused_before_listing_each_directive(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    include = with_mutation("include", "__typename " + "@include(if: true) " * 51)
    refused_once(await gql(client, include, user=alice), VALIDATION, "The document has more than 50 directives.")
    unknown = with_mutation("unknown", "__typename " + "@nope " * 900)  # graphql-core alone: 100 errors, then gives up
    refused_once(await gql(client, unknown, user=alice), VALIDATION, "The document has more than 50 directives.")
    assert await project_names(client, alice) == []


async def test_fifty_directives_are_accepted(client: httpx.AsyncClient, alice: UserHandle) -> None:
    spreads = (
        "{ me { "
        + " ".join(f"...F{i % 3} @include(if: true)" for i in range(50))
        + " } } "
        + " ".join(f"fragment F{i} on User {{ id }}" for i in range(3))
    )
    assert (await gql(client, spreads, user=alice))["data"]["me"]["id"]
    refused_once(
        await gql(client, spreads.replace("{ me { ", "{ me { ...F0 @skip(if: false) "), user=alice),
        VALIDATION,
        "more than 50 directives",
    )


async def test_field_duplication_is_refused(client: httpx.AsyncClient, alice: UserHandle) -> None:
    # The issue's `{ me { id id id ... } }` x 10 000 does not get past the token limit; within it, the duplicate limit.
    refused(
        await gql(client, "{ me { " + "id " * 10_000 + "} }", user=alice),
        "GRAPHQL_PARSE_FAILED",
        "more than 2000 tokens",
    )
    message = "Field 'id' is selected more than 20 times in one selection set."
    refused_once(await gql(client, "{ me { " + "id " * 900 + "} }", user=alice), VALIDATION, message)
    assert (await gql(client, "{ me { " + "id " * 20 + "} }", user=alice))["data"]["me"]["id"]
    dupes = with_mutation("dupes", "project { " + "id " * 21 + "}")
    refused_once(await gql(client, dupes, user=alice), VALIDATION, message)
    assert await project_names(client, alice) == []


@pytest.mark.parametrize(
    "query",
    [
        "{ me { " + "... on User { id } " * 21 + "} }",  # inline fragments
        "{ me { "
        + " ".join(f"...F{i}" for i in range(21))
        + " } } "
        + " ".join(f"fragment F{i} on User {{ id }}" for i in range(21)),
        "{ " + "me { id } " * 3 + " me { " + "id " * 18 + "} }",  # fields of one key merge, sub-selections too
    ],
    ids=["inline-fragments", "named-fragments", "merged-sub-selections"],
)
async def test_duplicates_are_counted_as_execution_merges_them(
    client: httpx.AsyncClient, alice: UserHandle, query: str
) -> None:
    refused_once(await gql(client, query, user=alice), VALIDATION, "Field 'id' is selected more than 20 times")


async def test_one_fragment_spread_many_times_in_a_selection_set_is_refused(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    """Execution collects it once, but graphql-core's validation visits every copy (about 30 ms for 900)."""
    query = "{ me { " + "...F " * 20 + "} } fragment F on User { id email }"
    assert (await gql(client, query, user=alice))["data"]["me"]["email"] == alice.email
    query = "{ me { " + "...F " * 21 + "} } fragment F on User { id email }"
    refused_once(
        await gql(client, query, user=alice),
        VALIDATION,
        "Fragment 'F' is spread more than 20 times in one selection set.",
    )


@pytest.mark.parametrize(
    "fragments, message",
    [
        ("fragment A on Project { id ...A }", "Cannot spread fragment 'A' within itself."),
        (
            "fragment A on Project { id ...B } fragment B on Project { name ...A }",
            "Cannot spread fragment 'A' within itself via 'B'.",
        ),
        (
            "fragment A on Project { ...A1 } "
            + " ".join(f"fragment A{i} on Project {{ ...A{(i + 1) % 150 or ''} }}" for i in range(1, 150)),
            "Cannot spread fragment 'A' within itself via 'A1', 'A2'",
        ),
    ],
    ids=["self", "pair", "ring-of-150"],
)
async def test_fragment_cycles_are_refused(
    client: httpx.AsyncClient, alice: UserHandle, fragments: str, message: str
) -> None:
    refused_once(
        await gql(client, with_mutation("cycle", "project { ...A }", fragments=fragments), user=alice),
        VALIDATION,
        message,
    )
    assert await project_names(client, alice) == []


async def test_fragment_bomb_is_summed_up_once(client: httpx.AsyncClient, alice: UserHandle) -> None:
    """F7 spreads F6 ten times, ...: 10**7 fields when expanded, and Strawberry's own depth and alias limits
    took seconds expanding it. Execution collects a fragment once per selection set: the answer is one `id`."""
    fragments = ["fragment F0 on User { id }"] + [
        f"fragment F{k} on User {{ " + f"...F{k - 1} " * 10 + "}" for k in range(1, 8)
    ]
    result = await gql(client, "{ me { ...F7 } } " + " ".join(fragments), user=alice)
    assert result == {"data": {"me": {"id": result["data"]["me"]["id"]}}}, result


async def test_aliases_are_counted_through_fragments(client: httpx.AsyncClient, alice: UserHandle) -> None:
    fragment = "fragment Pair on Query { a: me { id } b: me { email } }"
    query = "{ " + " ".join(f"x{i}: __typename" for i in range(14)) + " ...Pair } " + fragment
    refused_once(await gql(client, query, user=alice), VALIDATION, "16 aliases found. Allowed: 15")


async def test_selections_are_counted_with_fragments_expanded(client: httpx.AsyncClient, alice: UserHandle) -> None:
    flat = (
        "{ me { " + " ".join(f"f{i}" for i in range(1000)) + " } }"
    )  # unknown fields: refused before each is reported
    refused_once(
        await gql(client, flat, user=alice),
        VALIDATION,
        "'anonymous' selects more than 1000 fields (fragments expanded).",
    )
    fragment = "fragment Many on User { " + " ".join(f"f{i}" for i in range(100)) + " }"
    spread = "query Spread { " + " ".join(f"m{i}: me {{ ...Many }}" for i in range(10)) + " } " + fragment
    refused_once(await gql(client, spread, user=alice), VALIDATION, "'Spread' selects more than 1000 fields")


async def test_deep_documents_are_refused_at_the_depth_limit(client: httpx.AsyncClient, alice: UserHandle) -> None:
    deep = "{ " + "threads { edges { node { project { " * 37 + "id" + " } } } }" * 37 + " }"  # 148 levels
    refused_once(await gql(client, deep, user=alice), VALIDATION, "'anonymous' exceeds maximum operation depth of 10")
    fragment = "fragment Deep on Project { " + "threads { edges { node { project { " * 3 + "id" + " } } } }" * 3 + " }"
    through = with_mutation("deep", "project { ...Deep }", fragments=fragment)
    refused_once(await gql(client, through, user=alice), VALIDATION, "exceeds maximum operation depth of 10")
    assert await project_names(client, alice) == []


async def test_introspection_is_not_held_to_the_depth_limit(client: httpx.AsyncClient) -> None:
    from graphql import get_introspection_query

    query = get_introspection_query(
        descriptions=True, specified_by_url=True, directive_is_repeatable=True, schema_description=True
    )
    assert (await gql(client, query))["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_operations_per_document_are_limited(client: httpx.AsyncClient, alice: UserHandle) -> None:
    async def post(operations: int) -> dict[str, Any]:
        document = " ".join(
            f'mutation M{i} {{ createProject(input: {{name: "op-{i}"}}) {{ __typename }} }}' for i in range(operations)
        )
        response = await client.post("/graphql", json={"query": document, "operationName": "M0"}, headers=alice.headers)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    refused_once(await post(21), VALIDATION, "The document has 21 operations. Allowed: 20")
    assert await project_names(client, alice) == []
    assert "errors" not in await post(20)
    assert await project_names(client, alice) == ["op-0"]


async def test_fragments_the_limits_did_not_walk_are_refused(client: httpx.AsyncClient, alice: UserHandle) -> None:
    """graphql-core's validation visits every fragment definition, used or not, named twice or not."""
    heavy = "fragment F on User { " + "id " * 500 + "}"
    refused_once(await gql(client, "{ me { id } } " + heavy, user=alice), VALIDATION, "Fragment 'F' is never used.")
    twice = "{ me { ...F } } " + heavy + " fragment F on User { id }"
    refused_once(await gql(client, twice, user=alice), VALIDATION, "There can be only one fragment named 'F'.")


async def test_long_documents_are_refused_before_parsing(client: httpx.AsyncClient, alice: UserHandle) -> None:
    padded = with_mutation("long", "__typename") + " " * 100_000
    refused_once(await gql(client, padded, user=alice), "GRAPHQL_PARSE_FAILED", "characters long. Allowed: 100000")
    assert await project_names(client, alice) == []


async def test_batches_are_refused_with_400(client: httpx.AsyncClient, alice: UserHandle) -> None:
    one = {"query": 'mutation { createProject(input: {name: "batched"}) { __typename } }'}
    for batch in ([one], [one] * 12_000):  # the second is ~0.9 MB: under the body limit
        response = await client.post(
            "/graphql",
            content=json.dumps(batch).encode(),
            headers={**alice.headers, "content-type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert "Batching is not enabled" in response.text
    assert await project_names(client, alice) == []


async def test_multi_megabyte_variables_are_413(
    client: httpx.AsyncClient, alice: UserHandle, server: LiveServer
) -> None:
    body = json.dumps(
        {"query": "query($v: String) { __typename }", "variables": {"v": "x" * 3 * server.settings.max_body_bytes}}
    )
    response = await client.post(
        "/graphql", content=body.encode(), headers={**alice.headers, "content-type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["code"] == "PAYLOAD_TOO_LARGE"


async def test_deeply_nested_variables_are_400_not_500(client: httpx.AsyncClient, alice: UserHandle) -> None:
    def body(depth: int) -> bytes:
        return (
            b'{"query": "query($v: Boolean!) { me { id @include(if: $v) } }", "variables": {"v": '
            + b"[" * depth
            + b"]" * depth
            + b"}}"
        )

    deepest = await client.post(
        "/graphql", content=body(100_000), headers={**alice.headers, "content-type": "application/json"}
    )
    assert deepest.status_code == 400 and "JSON" in deepest.text, deepest.text
    # Shallow enough for the JSON parser: the variable does not coerce to Boolean, a GraphQL error (and no 500).
    nested = await client.post(
        "/graphql", content=body(500), headers={**alice.headers, "content-type": "application/json"}
    )
    assert nested.status_code == 200, nested.text
    assert nested.json()["data"] is None and nested.json()["errors"][0]["extensions"]["code"] != "INTERNAL_SERVER_ERROR"


async def test_huge_list_variables_are_refused_before_coercion(client: httpx.AsyncClient, alice: UserHandle) -> None:
    login = "mutation($a: [String!]) { login(input: {email: $e, password: $p, abilities: $a}) { __typename } }"
    login = login.replace("mutation($a: [String!])", "mutation($a: [String!], $e: String!, $p: String!)")
    sessions = len((await gql(client, "{ sessions { id } }", user=alice))["data"]["sessions"])
    variables = {"a": ["x"] * 150_000, "e": alice.email, "p": alice.password}  # 0.75 MB: under the body limit
    message = "Variable '$a' takes the variables over 10000 values"
    refused_once(await gql(client, login, variables), VALIDATION, message)
    assert (
        len((await gql(client, "{ sessions { id } }", user=alice))["data"]["sessions"]) == sessions
    )  # login never ran


def test_variable_values_limit_is_inclusive() -> None:
    limits = Limits.from_settings(Settings())
    assert variable_errors({"a": ["x"] * 10_000}, limits) == []
    assert (
        variable_errors({"a": ["x"] * 5_000, "b": {"c": ["x"] * 4_998}}, limits) == []
    )  # 5000 + 1 + 4998 + ... = 9999
    assert variable_errors({"a": ["x"] * 5_000, "b": [["x"] * 5_000]}, limits)
    assert variable_errors({"a": [[[[["x"]]]]] * 3000}, limits)  # nesting counts every level


async def test_limits_apply_to_websocket_operations(server: LiveServer, alice: UserHandle) -> None:
    # Through Strawberry's WebSocket path. (A flat runEvents selection takes the shared fan-out path of
    # schema/fanout.py instead, which parses and validates on its own, capped at 500 tokens.)
    subscription = 'subscription { runEvents(runId: "x", after: 0) { ... on RunEvent { ' + "sequence " * 21 + "} } }"
    [messages] = await ws_execute(server.ws_url, alice, [(subscription, {})])
    assert messages[-1]["type"] == "error", messages
    assert "Field 'sequence' is selected more than 20 times" in json.dumps(messages)


async def test_a_flat_run_events_selection_with_repeated_fields_gets_the_limits_too(
    server: LiveServer, alice: UserHandle
) -> None:
    # Flat selections take the shared fan-out path (schema/fanout.py); one that repeats a field does not, so the
    # duplicate limit refuses it before graphql-core's overlap check would run on it.
    subscription = 'subscription { runEvents(runId: "x", after: 0) { ' + "sequence " * 21 + "} }"
    [messages] = await ws_execute(server.ws_url, alice, [(subscription, {})])
    assert messages[-1]["type"] == "error", messages
    assert "Field 'sequence' is selected more than 20 times" in json.dumps(messages)


async def test_limits_follow_settings() -> None:
    schema = build_schema(
        Settings(
            graphql_max_directives=1,
            graphql_max_field_duplicates=2,
            graphql_max_operations=1,
            graphql_max_selections=3,
            graphql_max_document_chars=60,
            graphql_max_variable_values=2,
        )
    )
    cases = {
        "{ __typename @include(if: true) @skip(if: false) }": "more than 1 directives",
        "{ __typename __typename __typename }": "more than 2 times",
        "query A { __typename } query B { __typename }": "2 operations. Allowed: 1",
        "{ a: __typename b: __typename c: __typename d: __typename }": "selects more than 3 fields",
        "{ __typename }" + " " * 60: "characters long. Allowed: 60",
    }
    for query, message in cases.items():
        result = await schema.execute(
            query, context_value=NO_CONTEXT, operation_name="A" if "query A" in query else None
        )
        assert result.errors and message in result.errors[0].message, (query, result.errors)
    result = await schema.execute(
        "query($v: [Int]) { __typename }", variable_values={"v": [1, 2, 3]}, context_value=NO_CONTEXT
    )
    assert result.errors and "over 2 values" in result.errors[0].message
