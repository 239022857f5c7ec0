"""GraphQL hardening over real HTTP: depth, alias and token limits refuse before any resolver runs,
parse/validation caches, introspection switch, no mutations over GET, malformed and oversized requests."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from strawberry.extensions import ParserCache, ValidationCache

from runplane.config import Settings
from runplane.schema import build_schema
from runplane.schema.ids import to_global_id
from tests.api.spawn import SpawnedServer, spawned_server
from tests.support import LiveServer, UserHandle, gql, register_user

CREATE = 'createProject(input: {name: "%s"})'


def nest(fields: list[str], leaf: str = "id") -> str:
    body = leaf
    for field in reversed(fields):
        body = f"{field} {{ {body} }}"
    return body


def deep_create(name: str, depth: int) -> str:
    """A createProject mutation whose deepest leaf sits at `depth` (root fields are depth 0)."""
    cycle = ["threads", "edges", "node", "project"]
    path = ["project"] + [cycle[i % 4] for i in range(depth - 2)]
    return "mutation { " + CREATE % name + " { ... on ProjectPayload { " + nest(path, "__typename") + " } } }"


async def project_names(client: httpx.AsyncClient, user: UserHandle) -> list[str]:
    listed = await client.get("/api/projects?limit=100", headers=user.headers)
    return [p["name"] for p in listed.json()["projects"]]


def refused(result: dict[str, Any], code: str, message: str) -> None:
    assert result.get("data") is None, result
    assert result["errors"] and all(e["extensions"]["code"] == code for e in result["errors"]), result
    assert message in result["errors"][0]["message"], result


async def test_depth_limit_is_ten(client: httpx.AsyncClient, alice: UserHandle) -> None:
    at_limit = await gql(client, deep_create("depth-10", 10), user=alice)
    assert "errors" not in at_limit and at_limit["data"]["createProject"]["project"]["threads"] == {"edges": []}, (
        at_limit
    )
    refused(
        await gql(client, deep_create("depth-11", 11), user=alice),
        "GRAPHQL_VALIDATION_FAILED",
        "exceeds maximum operation depth of 10",
    )
    assert await project_names(client, alice) == ["depth-10"]  # the refused mutation never ran


async def test_depth_limit_also_applies_through_fragments(client: httpx.AsyncClient, alice: UserHandle) -> None:
    query = (
        "fragment Deep on Thread { "
        + nest(["project", "threads", "edges", "node", "project", "threads", "edges", "node"])
        + " }"
        " query { threads { edges { node { ...Deep } } } }"
    )
    refused(await gql(client, query, user=alice), "GRAPHQL_VALIDATION_FAILED", "exceeds maximum operation depth of 10")


async def test_alias_limit_is_fifteen(client: httpx.AsyncClient, alice: UserHandle) -> None:
    fifteen = "{ " + " ".join(f"a{i}: me {{ id }}" for i in range(15)) + " }"
    assert len((await gql(client, fifteen, user=alice))["data"]) == 15
    sixteen = "mutation { " + " ".join(f"a{i}: " + CREATE % f"alias-{i}" + " { __typename }" for i in range(16)) + " }"
    refused(await gql(client, sixteen, user=alice), "GRAPHQL_VALIDATION_FAILED", "16 aliases found. Allowed: 15")
    assert await project_names(client, alice) == []


async def test_token_limit_is_two_thousand(client: httpx.AsyncClient, alice: UserHandle) -> None:
    padded = "mutation { " + CREATE % "tokens" + " { " + "__typename " * 1990 + "} }"
    refused(await gql(client, padded, user=alice), "GRAPHQL_PARSE_FAILED", "Document contains more than 2000 tokens")
    assert await project_names(client, alice) == []
    # One token a list item: 1800 tokens. (150 fragments each selecting `me { id }` are as many tokens, but
    # 150 copies of one field in a selection set: the duplicated-field limit refuses them, see test_abuse.py.)
    within = 'mutation {{ deleteFiles(sandboxId: "{}", paths: [{}]) {{ __typename }} }}'.format(
        to_global_id("Sandbox", str(uuid.uuid4())),
        '"a" ' * 1785,
    )
    # Past every GraphQL limit, the resolver answers (its own cap on paths per call).
    assert (await gql(client, within, user=alice)) == {"data": {"deleteFiles": {"__typename": "InputError"}}}


async def test_syntax_and_unknown_field_errors_carry_codes(client: httpx.AsyncClient, alice: UserHandle) -> None:
    refused(await gql(client, "{ me { id ", user=alice), "GRAPHQL_PARSE_FAILED", "Syntax Error")
    refused(await gql(client, "{ nope }", user=alice), "GRAPHQL_VALIDATION_FAILED", "Cannot query field 'nope'")


async def test_parser_and_validation_caches_serve_repeated_documents(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    # The LRU caches are module-level, shared by every ParserCache/ValidationCache of the same size.
    parse_cache: Any = ParserCache(maxsize=512).cached_parse_document  # functools.lru_cache wrappers
    validate_cache: Any = ValidationCache(maxsize=512).cached_validate_document
    query = f"query Cached_{uuid.uuid4().hex} {{ me {{ id }} }}"
    await gql(client, query, user=alice)
    parsed, validated = parse_cache.cache_info(), validate_cache.cache_info()
    for _ in range(3):
        assert "errors" not in await gql(client, query, user=alice)
    assert parse_cache.cache_info().hits == parsed.hits + 3
    assert validate_cache.cache_info().hits == validated.hits + 3
    assert parse_cache.cache_info().misses == parsed.misses and validate_cache.cache_info().misses == validated.misses


def test_schema_extensions_are_made_per_operation() -> None:
    """Extension instances passed to Strawberry are shared by concurrent operations (deprecated): only factories."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_schema(Settings(graphql_introspection=False))


async def test_introspection_is_on_by_default(client: httpx.AsyncClient) -> None:
    result = await gql(client, "{ __schema { queryType { name } } }")
    assert result["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.fixture(scope="module")
async def no_introspection(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SpawnedServer]:
    async with spawned_server(tmp_path_factory.mktemp("no-introspection"), GRAPHQL_INTROSPECTION="false") as spawned:
        yield spawned


async def test_introspection_can_be_disabled(no_introspection: SpawnedServer) -> None:
    async with httpx.AsyncClient(base_url=no_introspection.base_url, timeout=30) as http:
        for query in ("{ __schema { types { name } } }", '{ __type(name: "Project") { fields { name } } }'):
            result = await gql(http, query)
            refused(result, "GRAPHQL_VALIDATION_FAILED", "introspection")
        assert (await gql(http, "{ __typename }"))["data"] == {"__typename": "Query"}
        user = await register_user(http)
        assert (await gql(http, "{ me { email } }", user=user))["data"]["me"]["email"] == user.email


async def test_mutations_over_get_are_refused_and_not_run(client: httpx.AsyncClient, alice: UserHandle) -> None:
    response = await client.get(
        "/graphql", params={"query": "mutation { " + CREATE % "via-get" + " { __typename } }"}, headers=alice.headers
    )
    assert response.status_code in {400, 405}, response.text
    assert "mutation" in response.text.lower()
    assert await project_names(client, alice) == []
    query = await client.get(
        "/graphql", params={"query": "{ me { id } }"}, headers={**alice.headers, "accept": "application/json"}
    )
    assert query.status_code == 200 and query.json()["data"]["me"]["id"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b'"a string"',
        b"42",
        b"null",
        b"true",
        b"[]",
        b'[{"query": "{ __typename }"}]',
        b'{"query": 5}',
        b'{"query": "{ __typename }", "variables": "x"}',
        b'{"query": "{ __typename }", "variables": [1]}',
        b"\xff\xfe\x00",
        b'{"variables": {}}',
    ],
)
async def test_malformed_graphql_requests_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post("/graphql", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text


async def test_unsupported_content_type_and_method(client: httpx.AsyncClient) -> None:
    plain = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers={"content-type": "text/plain"}
    )
    assert plain.status_code in {400, 415}
    assert (await client.put("/graphql", json={"query": "{ __typename }"})).status_code == 405


async def test_oversized_graphql_bodies_are_413(client: httpx.AsyncClient, server: LiveServer) -> None:
    limit = server.settings.max_body_bytes
    big = b'{"query": "{ __typename }", "pad": "' + b"x" * limit + b'"}'
    declared = await client.post("/graphql", content=big, headers={"content-type": "application/json"})
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    streamed = await client.post("/graphql", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
