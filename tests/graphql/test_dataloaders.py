"""Nested selections resolve through per-operation DataLoaders: a constant number of SQL statements
whatever the row counts, correct per-parent `first` windows, and no data kept between operations."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import pytest

from tests.graphql.helpers import Seeded, forget_live_sessions, seed, tables, ws_execute
from tests.support import LiveServer, UserHandle, count_queries, gql, register_user

NESTED = """
query Nested($projects: Int!, $threads: Int!, $messages: Int!) {
  projects(first: $projects) {
    pageInfo { hasNextPage }
    edges { node {
      name
      threads(first: $threads) {
        pageInfo { hasNextPage }
        edges { node {
          title
          messages(first: $messages) { pageInfo { hasNextPage } edges { node { content } } }
          project { name }
        } }
      }
    } }
  }
}
"""

# One statement per level, whatever the number of rows:
#   auth_sessions  the bearer token's session is live (authenticate_bearer; skipped for 5 s once confirmed)
#   projects       the caller's projects (keyset page)
#   threads        ThreadsByProjectLoader: first N threads of EVERY listed project (one ROW_NUMBER window)
#   messages       MessagesByThreadLoader: first N messages of EVERY listed thread (one ROW_NUMBER window)
#   projects       ProjectByIdLoader: Thread.project for every thread (one IN query)
COLD = Counter({"auth_sessions": 1, "projects": 2, "threads": 1, "messages": 1})
WARM = COLD - Counter({"auth_sessions": 1})


async def nested(
    client: httpx.AsyncClient, user: UserHandle, *, projects: int = 20, threads: int = 10, messages: int = 10
) -> dict[str, Any]:
    result = await gql(client, NESTED, {"projects": projects, "threads": threads, "messages": messages}, user=user)
    assert "errors" not in result, result
    data: dict[str, Any] = result["data"]
    return data


async def measured(
    client: httpx.AsyncClient, user: UserHandle, *, cold: bool = True, **first: int
) -> tuple[dict[str, Any], list[str]]:
    if cold:
        forget_live_sessions()
    with count_queries() as counter:
        data = await nested(client, user, **first)
    return data, counter.statements


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 2, 0), (8, 6, 5)], ids=lambda s: "x".join(map(str, s)))
async def test_nested_query_costs_five_statements_whatever_the_row_counts(
    client: httpx.AsyncClient, shape: tuple[int, int, int]
) -> None:
    user = await register_user(client)
    await seed(user, *shape)
    data, statements = await measured(client, user)
    assert len(data["projects"]["edges"]) == shape[0]
    assert tables(statements) == COLD, statements
    assert len(statements) == 5


async def test_a_confirmed_session_is_not_looked_up_again(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    await seed(user, 2, 2, 2)
    _, cold = await measured(client, user)
    _, warm = await measured(client, user, cold=False)  # within the 5 s the session check is trusted
    assert tables(cold) == COLD and tables(warm) == WARM
    assert len(warm) == 4


def threads_of(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {edge["node"]["name"]: edge["node"]["threads"] for edge in data["projects"]["edges"]}


async def test_first_limits_each_parent_and_has_next_page_is_right(client: httpx.AsyncClient) -> None:
    user = await register_user(client)
    seeded = await seed(user, 8, 6, 5)
    data = await nested(client, user, projects=20, threads=4, messages=2)
    assert data["projects"]["pageInfo"]["hasNextPage"] is False
    assert [e["node"]["name"] for e in data["projects"]["edges"]] == [f"p{p}" for p in reversed(range(8))]
    for name, threads in threads_of(data).items():
        # newest first, only this project's threads, `first` of them, and more exist
        assert [e["node"]["title"] for e in threads["edges"]] == [f"{name}-t{t}" for t in (5, 4, 3, 2)]
        assert threads["pageInfo"]["hasNextPage"] is True
        for edge in threads["edges"]:
            thread = edge["node"]
            assert thread["project"]["name"] == name
            assert [m["node"]["content"] for m in thread["messages"]["edges"]] == [
                f"{thread['title']}-m{m}" for m in (4, 3)
            ]
            assert thread["messages"]["pageInfo"]["hasNextPage"] is True
    assert_exact_windows(await nested(client, user, projects=20, threads=6, messages=5), seeded, more=False)
    assert_exact_windows(await nested(client, user, projects=20, threads=50, messages=100), seeded, more=False)
    first_three = await nested(client, user, projects=3, threads=1, messages=1)
    assert first_three["projects"]["pageInfo"]["hasNextPage"] is True
    assert [e["node"]["name"] for e in first_three["projects"]["edges"]] == ["p7", "p6", "p5"]


def assert_exact_windows(data: dict[str, Any], seeded: Seeded, *, more: bool) -> None:
    """Asking for at least as many rows as exist: all of them, and no next page."""
    by_name = threads_of(data)
    for project in seeded.projects:
        threads = by_name[project.name]
        assert threads["pageInfo"]["hasNextPage"] is more
        assert [e["node"]["title"] for e in threads["edges"]] == [t.title for t in reversed(seeded.threads[project.id])]
        for edge, thread in zip(threads["edges"], reversed(seeded.threads[project.id]), strict=False):
            messages = edge["node"]["messages"]
            assert messages["pageInfo"]["hasNextPage"] is more
            assert [m["node"]["content"] for m in messages["edges"]] == [
                m.content for m in reversed(seeded.messages[thread.id])
            ]


async def test_different_first_values_in_one_query_get_their_own_windows(client: httpx.AsyncClient) -> None:
    """Loader keys are (parent, first): aliases asking for different windows are batched per `first`."""
    user = await register_user(client)
    await seed(user, 4, 5, 0)
    query = """{ projects { edges { node { name
        one: threads(first: 1) { pageInfo { hasNextPage } edges { node { title } } }
        three: threads(first: 3) { pageInfo { hasNextPage } edges { node { title } } }
        all: threads(first: 5) { pageInfo { hasNextPage } edges { node { title } } }
    } } } }"""
    forget_live_sessions()
    with count_queries() as counter:
        result = await gql(client, query, user=user)
    for edge in result["data"]["projects"]["edges"]:
        node = edge["node"]
        for alias, size, more in (("one", 1, True), ("three", 3, True), ("all", 5, False)):
            assert [e["node"]["title"] for e in node[alias]["edges"]] == [
                f"{node['name']}-t{t}" for t in range(4, 4 - size, -1)
            ]
            assert node[alias]["pageInfo"]["hasNextPage"] is more
    assert tables(counter.statements) == Counter({"auth_sessions": 1, "projects": 1, "threads": 3})


async def test_first_out_of_range_on_a_nested_connection_is_invalid_input(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    await seed(alice, 1, 1, 0)
    for first in (0, -1, 101):
        result = await gql(
            client,
            "query($n: Int!) { projects { edges { node { threads(first: $n) { edges { cursor } } } } } }",
            {"n": first},
            user=alice,
        )
        assert [e["extensions"]["code"] for e in result["errors"]] == ["INVALID_INPUT"]
        assert result["errors"][0]["extensions"]["field"] == "first"


def first_thread_messages(data: dict[str, Any]) -> list[str]:
    thread = data["projects"]["edges"][0]["node"]["threads"]["edges"][0]["node"]
    return [m["node"]["content"] for m in thread["messages"]["edges"]]


async def test_loaders_do_not_outlive_an_operation(client: httpx.AsyncClient, alice: UserHandle) -> None:
    seeded = await seed(alice, 1, 1, 1)
    thread = seeded.threads[seeded.projects[0].id][0]
    before = await nested(client, alice)
    posted = await gql(
        client,
        "mutation($i: PostMessageInput!) { postMessage(input: $i) { __typename } }",
        {"i": {"threadId": str(thread.id), "content": "fresh"}},
        user=alice,
    )
    assert posted["data"]["postMessage"]["__typename"] == "MessagePayload"
    after = await nested(client, alice)
    assert first_thread_messages(before) == ["p0-t0-m0"]
    assert first_thread_messages(after) == ["fresh", "p0-t0-m0"]


async def test_loaders_are_per_operation_on_one_websocket(server: LiveServer, alice: UserHandle) -> None:
    """Strawberry keeps one context per socket; loaders on it would serve the first answer forever."""
    seeded = await seed(alice, 1, 1, 1)
    thread_id = str(seeded.threads[seeded.projects[0].id][0].id)
    variables = {"projects": 5, "threads": 5, "messages": 5}
    post = "mutation($i: PostMessageInput!) { postMessage(input: $i) { __typename } }"
    first, posted, second = await ws_execute(
        server.ws_url,
        alice,
        [(NESTED, variables), (post, {"i": {"threadId": thread_id, "content": "over ws"}}), (NESTED, variables)],
    )
    assert posted[0]["payload"]["data"]["postMessage"]["__typename"] == "MessagePayload"
    assert first_thread_messages(first[0]["payload"]["data"]) == ["p0-t0-m0"]
    assert first_thread_messages(second[0]["payload"]["data"]) == ["over ws", "p0-t0-m0"]


async def test_concurrent_operations_of_two_users_never_share_loaders(client: httpx.AsyncClient) -> None:
    users = [await register_user(client) for _ in range(2)]
    for index, user in enumerate(users):
        await seed(user, 3, 3, 2, tag=f"u{index}-")
    results = await asyncio.gather(*(nested(client, users[i % 2]) for i in range(12)))
    for i, data in enumerate(results):
        tag = f"u{i % 2}-"
        names = [e["node"]["name"] for e in data["projects"]["edges"]]
        assert names and all(name.startswith(tag) for name in names)
        for threads in threads_of(data).values():
            for edge in threads["edges"]:
                assert edge["node"]["title"].startswith(tag) and edge["node"]["project"]["name"].startswith(tag)
                assert all(m["node"]["content"].startswith(tag) for m in edge["node"]["messages"]["edges"])
