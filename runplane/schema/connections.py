"""Turn resolver pages and loader results into Relay connections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from runplane.resolvers.pagination import Page, encode_cursor
from runplane.schema.common import Connection, Edge, PageInfo

T = TypeVar("T")


def connection_from_page(page: Page[Any], convert: Callable[[Any], T]) -> Connection[T]:
    edges = [Edge(cursor=encode_cursor(row), node=convert(row)) for row in page.items]
    info = PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.start_cursor,
        end_cursor=page.end_cursor,
    )
    return Connection(edges=edges, page_info=info)


def connection_from_rows(rows: list[Any], first: int, convert: Callable[[Any], T]) -> Connection[T]:
    """Rows fetched with limit first+1: the extra row only tells that a next page exists."""
    return connection_from_page(Page(items=rows[:first], has_next_page=len(rows) > first, has_previous_page=False), convert)
