"""Every connection pages both ways (first/after, last/before), nested ones too, still batched per level."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from tests.graphql.helpers import forget_live_sessions, seed, tables
from tests.support import UserHandle, count_queries, gql

MESSAGES = """
query Messages($project: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  project(id: $project) { threads(first: 5) { edges { node {
    title
    messages(first: $first, after: $after, last: $last, before: $before) {
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      edges { cursor node { content } }
    }
  } } } }
}
"""


async def messages_page(client: httpx.AsyncClient, user: UserHandle, project: str, **args: Any) -> list[dict[str, Any]]:
    """The messages connection of each thread of the project (newest thread first)."""
    result = await gql(client, MESSAGES, {"project": project, **args}, user=user)
    assert "errors" not in result, result
    return [edge["node"]["messages"] for edge in result["data"]["project"]["threads"]["edges"]]


def contents(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["content"] for edge in connection["edges"]]


async def test_a_nested_connection_walks_forward_across_three_pages(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    seeded = await seed(alice, 1, 2, 7)
    project = str(seeded.projects[0].id)
    newest_first = [f"p0-t1-m{m}" for m in reversed(range(7))]
    seen: list[str] = []
    after: str | None = None
    for number, more in ((1, True), (2, True), (3, False)):
        connection = (await messages_page(client, alice, project, first=3, after=after))[0]
        assert connection["pageInfo"]["hasNextPage"] is more, number
        assert connection["pageInfo"]["hasPreviousPage"] is (number > 1)
        assert connection["pageInfo"]["endCursor"] == connection["edges"][-1]["cursor"]
        assert connection["pageInfo"]["startCursor"] == connection["edges"][0]["cursor"]
        seen += contents(connection)
        after = connection["pageInfo"]["endCursor"]
    assert seen == newest_first


async def test_a_nested_connection_walks_backward_with_last_and_before(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    seeded = await seed(alice, 1, 1, 7)
    project = str(seeded.projects[0].id)
    pages: list[list[str]] = []
    before: str | None = None
    for more in (True, True, False):
        connection = (await messages_page(client, alice, project, last=3, before=before))[0]
        assert connection["pageInfo"]["hasPreviousPage"] is more
        assert connection["pageInfo"]["hasNextPage"] is (before is not None)
        pages.append(contents(connection))
        before = connection["pageInfo"]["startCursor"]
    # `last` takes the end of the newest-first order (the oldest messages), each page still in that order
    assert pages == [["p0-t0-m2", "p0-t0-m1", "p0-t0-m0"], ["p0-t0-m5", "p0-t0-m4", "p0-t0-m3"], ["p0-t0-m6"]]


async def test_after_and_before_together_bound_a_window(client: httpx.AsyncClient, alice: UserHandle) -> None:
    seeded = await seed(alice, 1, 1, 6)
    project = str(seeded.projects[0].id)
    everything = (await messages_page(client, alice, project, first=10))[0]
    cursors = [edge["cursor"] for edge in everything["edges"]]  # m5 .. m0
    window = (await messages_page(client, alice, project, first=10, after=cursors[0], before=cursors[4]))[0]
    assert contents(window) == ["p0-t0-m4", "p0-t0-m3", "p0-t0-m2"]
    window = (await messages_page(client, alice, project, last=2, after=cursors[0], before=cursors[4]))[0]
    assert contents(window) == ["p0-t0-m3", "p0-t0-m2"]


async def test_every_parent_gets_its_own_page_in_one_query_per_level(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    """A cursor is a position in (created_at, id): the same cursor pages every thread from that point."""
    seeded = await seed(alice, 1, 3, 4)
    project = str(seeded.projects[0].id)
    first = await messages_page(client, alice, project, first=2)
    # a cursor in the oldest thread (at its m2): the other threads' messages are all newer
    cursor = first[-1]["pageInfo"]["endCursor"]
    forget_live_sessions()
    with count_queries() as counter:
        pages = await messages_page(client, alice, project, last=2, before=cursor)
    assert tables(counter.statements) == Counter({"auth_sessions": 1, "projects": 1, "threads": 1, "messages": 1})
    assert [contents(page) for page in pages] == [
        ["p0-t2-m1", "p0-t2-m0"],
        ["p0-t1-m1", "p0-t1-m0"],
        ["p0-t0-m3"],
    ]


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"first": 2, "last": 2}, "last"),
        ({"last": 0}, "last"),
        ({"last": 101}, "last"),
        ({"first": 0}, "first"),
        ({"after": "not a cursor"}, "after"),
        ({"last": 1, "before": "bm9wZQ"}, "before"),
    ],
)
async def test_bad_page_arguments_are_invalid_input_naming_the_argument(
    client: httpx.AsyncClient, alice: UserHandle, args: dict[str, Any], field: str
) -> None:
    seeded = await seed(alice, 1, 1, 1)
    result = await gql(client, MESSAGES, {"project": str(seeded.projects[0].id), **args}, user=alice)
    assert [e["extensions"]["code"] for e in result["errors"]] == ["INVALID_INPUT"]
    assert result["errors"][0]["extensions"]["field"] == field


ROOTS = {
    "projects": "query($first: Int, $after: String, $last: Int, $before: String) "
    "{ c: projects(first: $first, after: $after, last: $last, before: $before) "
    "{ pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { name } } } }",
    "threads": "query($first: Int, $after: String, $last: Int, $before: String) "
    "{ c: threads(first: $first, after: $after, last: $last, before: $before) "
    "{ pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { name: title } } } }",
}


@pytest.mark.parametrize("root", sorted(ROOTS))
async def test_root_connections_page_both_ways(client: httpx.AsyncClient, alice: UserHandle, root: str) -> None:
    await seed(alice, 5, 1, 0) if root == "projects" else await seed(alice, 1, 5, 0)
    names = {"projects": [f"p{p}" for p in range(5)], "threads": [f"p0-t{t}" for t in range(5)]}[root][::-1]

    async def page(**args: Any) -> dict[str, Any]:
        result = await gql(client, ROOTS[root], args, user=alice)
        assert "errors" not in result, result
        connection: dict[str, Any] = result["data"]["c"]
        return connection

    forward = await page(first=2)
    second = await page(first=2, after=forward["pageInfo"]["endCursor"])
    assert [e["node"]["name"] for e in forward["edges"] + second["edges"]] == names[:4]
    backward = await page(last=2)
    assert [e["node"]["name"] for e in backward["edges"]] == names[3:]
    assert backward["pageInfo"]["hasPreviousPage"] is True and backward["pageInfo"]["hasNextPage"] is False
    earlier = await page(last=2, before=backward["pageInfo"]["startCursor"])
    assert [e["node"]["name"] for e in earlier["edges"]] == names[1:3]


async def test_total_count_costs_one_query_per_level_and_only_when_selected(
    client: httpx.AsyncClient, alice: UserHandle
) -> None:
    await seed(alice, 3, 4, 2)
    query = """{ projects(first: 2) { totalCount edges { node {
        threads(first: 1) { totalCount edges { node { messages(last: 1) { totalCount } runs { totalCount } } } }
    } } } }"""
    forget_live_sessions()
    with count_queries() as counter:
        result = await gql(client, query, user=alice)
    assert "errors" not in result, result
    projects = result["data"]["projects"]
    assert projects["totalCount"] == 3
    for edge in projects["edges"]:
        threads = edge["node"]["threads"]
        assert threads["totalCount"] == 4 and len(threads["edges"]) == 1
        thread = threads["edges"][0]["node"]
        assert thread["messages"]["totalCount"] == 2 and thread["runs"]["totalCount"] == 0
    # auth, projects page + COUNT, threads page + GROUP BY count, messages and runs pages + their counts
    assert tables(counter.statements) == Counter(
        {"auth_sessions": 1, "projects": 2, "threads": 2, "messages": 2, "agent_runs": 2}
    ), counter.statements
    forget_live_sessions()
    with count_queries() as counter:
        await gql(
            client, "{ projects(first: 2) { edges { node { threads(first: 1) { edges { cursor } } } } } }", user=alice
        )
    assert tables(counter.statements) == Counter({"auth_sessions": 1, "projects": 1, "threads": 1})
