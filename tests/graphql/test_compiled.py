"""Compiled query execution (runplane/schema/compiled.py) answers exactly as graphql-core does.

Every document goes over real HTTP twice: once as served (the compiled plan, when the document is one it
compiles), once with the fast path switched off for that request only. The switch is test-only: the test
replaces `compiled.plan_for` (the plan cache lookup) with a function answering "not compiled", which sends
the operation down graphql-core's normal path; the session server runs in this process and event loop.
The two response bodies must be byte-identical (key order included), and the counters in `compiled.stats`
tell which path answered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import strawberry

from runplane.config import Settings
from runplane.schema import build_schema, compiled
from tests.runs.helpers import make_thread, start_run, wait_for_status
from tests.support import UserHandle, gql, register_user


@pytest.fixture(scope="module")
async def seeded(server: Any) -> dict[str, Any]:
    """A user with two projects, a thread with three finished runs (real events, JSON payloads) and one
    with a message, and an empty thread."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as client:
        user = await register_user(client)
        thread_id = await make_thread(client, user)
        runs = []
        for _ in range(3):
            run = await start_run(client, user, thread_id)
            await wait_for_status(client, user, run["agent_run_id"], {"completed", "failed"})
            runs.append(run["agent_run_id"])
        await make_thread(client, user)  # a second thread without runs
        other = await client.post(
            "/api/projects", json={"name": "other", "description": "second"}, headers=user.headers
        )
        assert other.status_code in (200, 201), other.text
        listed = await gql(client, "{ projects(first: 5) { edges { node { id name } } } }", user=user)
        return {"user": user, "projects": [e["node"]["id"] for e in listed["data"]["projects"]["edges"]], "runs": runs}


@pytest.fixture
def counted() -> Iterator[dict[str, int]]:
    before = dict(compiled.stats)
    delta: dict[str, int] = {}
    yield delta
    delta.update({k: compiled.stats[k] - before[k] for k in before})


async def post(client: httpx.AsyncClient, body: dict[str, Any], user: UserHandle | None) -> str:
    response = await client.post("/graphql", json=body, headers=user.headers if user else {})
    return f"{response.status_code} {response.text}"


async def both(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    user: UserHandle | None,
    operation_name: str | None = None,
) -> tuple[str, str, dict[str, int]]:
    """(response as served, response through graphql-core only, which path served the first)."""
    body: dict[str, Any] = {"query": query, "variables": variables or {}}
    if operation_name:
        body["operationName"] = operation_name
    before = dict(compiled.stats)
    fast = await post(client, body, user)
    path = {k: compiled.stats[k] - before[k] for k in before}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiled, "plan_for", lambda executor: None)
        normal = await post(client, body, user)
    return fast, normal, path


COMPILED = {
    "nested": """{ projects(first: 10) { edges { node { name threads(first: 5) { edges { node { id
        runs(first: 3) { edges { node { status lastEvents(last: 3) { sequence type } } } } } } } } } } }""",
    "everything_of_a_run": """{ projects { pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges { cursor node { __typename id name description createdAt updatedAt
          threads { pageInfo { hasNextPage endCursor } nodes { id title createdAt
            project { id name }
            messages(first: 2) { edges { cursor node { id role content createdAt } } }
            runs(first: 10) { nodes { __typename id status model prompt error createdAt startedAt completedAt eventCount
              usage { promptTokens completionTokens totalTokens }
              thread { title }
              lastEvents { sequence type createdAt payload }
              events(after: 1, first: 4) { sequence type payload } } } } } } } } }""",
    "aliases_and_fragments": """query Aliased { mine: projects(first: 1) { ...Page } all: projects { ...Page } }
        fragment Page on ProjectConnection { edges { node { ...P ... on Project { alias: name } } } }
        fragment P on Project { id ... on Node { id } threads(first: 1) { nodes { t: title __typename } } }""",
    "me_and_status": "{ me { id email displayName isAdmin createdAt __typename } billingStatus { status canRun tokensUsed tokensLimit } }",
    "empty": "{ __typename }",
}


@pytest.mark.parametrize("name", list(COMPILED))
async def test_compiled_documents_answer_as_graphql_core(
    client: httpx.AsyncClient, seeded: dict[str, Any], name: str
) -> None:
    fast, normal, path = await both(client, COMPILED[name], user=seeded["user"])
    assert fast == normal
    assert fast.startswith("200 ") and '"errors"' not in fast, fast
    assert path == {"compiled": 1, "aborted": 0, "not_compiled": 0}


async def test_variables_enums_and_single_objects(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    query = """query One($id: ID!, $first: Int!, $run: ID!, $last: Int = 2) {
        project(id: $id) { id name threads(first: $first) { edges { node { runs { nodes { id lastEvents(last: $last) { sequence payload } } } } } } }
        run(id: $run) { id status usage { totalTokens } lastEvents(last: $last) { type createdAt } }
        events(runId: $run, first: $first) { sequence type payload } }"""
    for variables in ({"first": 1}, {"first": 3, "last": 5}, {"first": 2, "last": 1}):
        variables = {"id": seeded["projects"][-1], "run": seeded["runs"][0], **variables}
        fast, normal, path = await both(client, query, variables, user=seeded["user"], operation_name="One")
        assert fast == normal and '"errors"' not in fast, fast
        assert path["compiled"] == 1


async def test_unused_operations_and_nulls(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    query = """query A { projects(first: 1) { nodes { name } } }
               query B { projects(first: 2) { edges { node { threads(first: 1) { pageInfo { startCursor endCursor } } } } } }
               mutation C { logout { __typename } }"""
    for name in ("A", "B"):
        fast, normal, path = await both(client, query, user=seeded["user"], operation_name=name)
        assert fast == normal and '"errors"' not in fast and "null" in normal + "null", fast
        assert path["compiled"] == 1


FALLBACK = {
    "directives": (
        "query($yes: Boolean!) { projects { nodes { name @include(if: $yes) id @skip(if: false) } } }",
        {"yes": True},
    ),
    "introspection": ("{ __schema { queryType { name } } projects { nodes { id } } }", None),
    "type_introspection": ('{ __type(name: "Project") { name } }', None),
}


@pytest.mark.parametrize("name", ["directives", "introspection", "type_introspection"])
async def test_documents_it_does_not_compile_run_normally(
    client: httpx.AsyncClient, seeded: dict[str, Any], name: str
) -> None:
    query, variables = FALLBACK[name]
    fast, normal, path = await both(client, query, variables, user=seeded["user"])
    assert fast == normal and '"errors"' not in fast, fast
    assert path == {"compiled": 0, "aborted": 0, "not_compiled": 1}


async def test_mutations_never_reach_the_fast_path(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    mutation = 'mutation { createProject(input: {name: ""}) { __typename ... on UserError { code message } } }'
    before = dict(compiled.stats)
    result = await gql(client, mutation, user=seeded["user"])
    assert result["data"]["createProject"]["__typename"] == "InputError"
    assert compiled.stats == before


ERRORS = [
    # a domain error from a root resolver (NotFound), inside a document the fast path compiles
    ('{ project(id: "UHJvamVjdDowMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDA") { id name } }', None, True),
    # a malformed id: InvalidInput, with its path
    ("query($id: ID!) { projects(first: 1) { nodes { id } } run(id: $id) { id } }", {"id": "nope"}, True),
    # bad arguments: graphql-core's own errors from the resolvers' input checks
    ("{ projects(first: -1) { nodes { id } } }", None, True),
    ('{ projects(after: "garbage") { nodes { id } } }', None, True),
]


@pytest.mark.parametrize("query,variables,user", ERRORS)
async def test_errors_fall_back_with_their_codes_and_paths(
    client: httpx.AsyncClient, seeded: dict[str, Any], query: str, variables: dict[str, Any] | None, user: bool
) -> None:
    fast, normal, path = await both(client, query, variables, user=seeded["user"] if user else None)
    assert fast == normal
    body = json.loads(fast.split(" ", 1)[1])
    assert body["errors"] and all(e.get("extensions", {}).get("code") for e in body["errors"]), body
    assert path == {"compiled": 0, "aborted": 1, "not_compiled": 0}


async def test_anonymous_and_refused_documents_are_unchanged(client: httpx.AsyncClient, seeded: dict[str, Any]) -> None:
    for query in (
        "{ projects { nodes { id } } }",  # anonymous: UNAUTHENTICATED from the resolver, after an aborted attempt
        "{ projects { nodes { nope } } }",  # validation error: never executed
        "{ a: me { id } a: me { email } " + "}",
        "{ " + "me { id } " * 30 + "}",
    ):
        fast, normal, _ = await both(client, query, user=None)
        assert fast == normal, query
    deep = "{ projects { nodes { threads { nodes { project { threads { nodes { project { threads { nodes { project { id } } } } } } } } } } } }"
    fast, normal, path = await both(client, deep, user=seeded["user"])
    assert fast == normal and "GRAPHQL_VALIDATION_FAILED" in fast
    assert path == {"compiled": 0, "aborted": 0, "not_compiled": 0}


async def test_same_data_as_a_schema_without_the_fast_path(seeded: dict[str, Any]) -> None:
    """The setting: a schema built with graphql_compiled_queries=False uses graphql-core's own executor."""
    assert (
        build_schema(Settings(graphql_compiled_queries=False)).execution_context_class is not compiled.CompiledExecutor
    )
    assert build_schema(Settings()).execution_context_class is compiled.CompiledExecutor
    assert Settings.from_env().graphql_compiled_queries is True


def test_plan_cache_is_bounded() -> None:
    assert compiled.PLAN_CACHE_SIZE >= 64
    assert len(compiled._plans) <= compiled.PLAN_CACHE_SIZE


# The API's queries reach no interface or union, and its resolvers do not return nulls where the schema
# says non-null: a small schema of its own, executed in-process with and without the fast path, covers those.


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Dog(Named):
    barks: bool


@strawberry.type
class Toy:
    label: str
    owner: Named

    @strawberry.field
    def missing(self) -> str:
        return None  # type: ignore[return-value]


@strawberry.type
class SmallQuery:
    @strawberry.field
    def named(self) -> Named:
        return Dog(name="rex", barks=True)

    @strawberry.field
    async def toys(self) -> list[Toy]:
        return [Toy(label="ball", owner=Dog(name="rex", barks=False))]

    @strawberry.field
    async def fails(self, n: int = 1) -> int | None:
        raise ValueError(f"broken {n}")

    @strawberry.field
    def plain(self, n: int = 1) -> list[int]:
        return [n, n + 1]


SMALL = [
    ("{ named { name ... on Dog { barks } } }", "not_compiled"),  # an interface
    ("{ toys { label owner { name } } }", "not_compiled"),  # an interface below
    ("{ toys { label missing } }", "aborted"),  # a null in a non-null position
    ("{ plain fails(n: 3) }", "aborted"),  # a resolver raises
    ("{ plain(n: 4) toys { label } }", "compiled"),
]


@pytest.mark.parametrize("query,path", SMALL)
async def test_small_schema_fallbacks(query: str, path: str) -> None:
    fast = strawberry.Schema(query=SmallQuery, types=[Dog], execution_context_class=compiled.CompiledExecutor)
    normal = strawberry.Schema(query=SmallQuery, types=[Dog])
    assert (await normal.execute(query)).data is not None or "fails" in query or "missing" in query
    before = dict(compiled.stats)
    got = await fast.execute(query)
    assert {k: compiled.stats[k] - before[k] for k in before}[path] == 1
    expected = await normal.execute(query)
    assert json.dumps(got.data) == json.dumps(expected.data)
    assert [e.formatted for e in got.errors or ()] == [e.formatted for e in expected.errors or ()]
