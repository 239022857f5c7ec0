"""Turn rows into GraphQL objects (RowBacked) and resolver pages and loader results into Relay connections."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, TypeVar, cast

from runplane.resolvers.pagination import Page, encode_cursor
from runplane.schema.common import Connection, Edge, PageInfo

T = TypeVar("T")
B = TypeVar("B", bound="RowBacked")


_new = object.__new__


class RowBacked:
    """Base of Strawberry types made from one row. `lazy(row)` makes the object without computing any field:
    each is computed from the row on first read (graphql-core reads only the selected ones), by the function
    `row_fields` registered for it. A nested selection makes hundreds of these objects and reads few fields.

    The registered fields must have no default (a class attribute would answer instead); `row_fields` checks.
    """

    _row_fields: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    _row: Any  # each subclass declares it as its strawberry.Private row type

    @classmethod
    def lazy(cls: type[B], row: Any) -> B:
        made = _new(cls)
        made._row = row
        return made

    @classmethod
    def lazy_list(cls: type[B], rows: Iterable[Any]) -> list[B]:
        """`[cls.lazy(row) for row in rows]`, in one frame."""
        made = []
        for row in rows:
            one = _new(cls)
            one._row = row
            made.append(one)
        return made

    def __getattr__(self, name: str) -> Any:  # only for attributes not yet in __dict__
        compute = type(self)._row_fields.get(name)
        if compute is None or "_row" not in self.__dict__:
            raise AttributeError(name)
        value = self.__dict__[name] = compute(self.__dict__["_row"])
        return value


def row_fields(cls: type[RowBacked], **fields: Callable[[Any], Any]) -> None:
    for name in fields:
        if any(name in klass.__dict__ for klass in cls.__mro__):
            raise TypeError(f"{cls.__name__}.{name} has a class attribute: it cannot be computed lazily")
    cls._row_fields = fields


class _Edge:
    """An Edge whose cursor is encoded only when selected: most nested selections never ask for it. Edge and
    PageInfo implement no interface, so graphql-core takes any object with their attributes."""

    __slots__ = ("_row", "node")

    def __init__(self, row: Any, node: Any) -> None:
        self._row = row
        self.node = node

    @property
    def cursor(self) -> str:
        return encode_cursor(self._row)


class _PageInfo:
    __slots__ = ("_page",)

    def __init__(self, page: Page[Any]) -> None:
        self._page = page

    has_next_page = property(lambda self: self._page.has_next_page)
    has_previous_page = property(lambda self: self._page.has_previous_page)
    start_cursor = property(lambda self: self._page.start_cursor)
    end_cursor = property(lambda self: self._page.end_cursor)


def connection_from_page(
    page: Page[Any], convert: Callable[[Any], T], count: Callable[[], Awaitable[int]] | None = None
) -> Connection[T]:
    edges = [cast(Edge[T], _Edge(row, convert(row))) for row in page.items]
    return Connection(edges=edges, page_info=cast(PageInfo, _PageInfo(page)), _count=count or page.count)


def connection_of_page(
    page: Page[Any], node_class: type[RowBacked], count: Callable[[], Awaitable[int]] | None = None
) -> Connection[Any]:
    """`connection_from_page(page, node_class.lazy)`, with the nodes made in one go."""
    edges = cast(list[Edge[Any]], list(map(_Edge, page.items, node_class.lazy_list(page.items))))
    return Connection(edges=edges, page_info=cast(PageInfo, _PageInfo(page)), _count=count or page.count)
