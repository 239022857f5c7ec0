"""Shared GraphQL shapes: PageInfo, the Node interface, connection builders."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import strawberry

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.interface(description="An object with an opaque global id.")
class Node:
    id: strawberry.ID


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo
    _count: strawberry.Private[Callable[[], Awaitable[int]] | None] = None

    @strawberry.field(description="How many there are in all (a COUNT, made only when selected; batched when nested).")
    async def total_count(self) -> int:
        if self._count is None:
            raise RuntimeError("this connection was built without a count")
        return await self._count()

    @strawberry.field
    def nodes(self) -> list[T]:
        return [edge.node for edge in self.edges]
