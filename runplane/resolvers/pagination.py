"""Keyset pagination over (created_at, id) with opaque cursors: the one paginator of every connection.

A listing has an order (newest first, or oldest first for what reads from its start); `first`/`after` walk it
forwards, `last`/`before` backwards (Relay's cursor connections). Root listings run one query
(`paginate`); nested ones (a page of children for each of many parents) run one ROW_NUMBER window for all
the parents asking the same page (`children_pages`).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

from tortoise.expressions import Q, Subquery
from tortoise.functions import Count
from tortoise.models import Model
from tortoise.queryset import QuerySet

from runplane.errors import InvalidInput
from runplane.models.base import TimestampedModel
from runplane.resolvers.batching import Keyset, first_children
from runplane.resolvers.validation import clean_limit

T = TypeVar("T", bound=TimestampedModel)  # keyset pages order by (created_at, id)
DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    has_previous_page: bool
    # How many rows the listing has in all, when asked (one COUNT; the GraphQL layer batches nested ones).
    count: Callable[[], Awaitable[int]] | None = field(default=None, compare=False, repr=False)

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor(self.items[-1]) if self.items else None

    @property
    def start_cursor(self) -> str | None:
        return encode_cursor(self.items[0]) if self.items else None


@dataclass(frozen=True)
class PageArgs:
    """A validated page request (hashable: nested connections batch by it). Exactly one of first/last is set."""

    first: int | None = DEFAULT_PAGE
    after: str | None = None
    last: int | None = None
    before: str | None = None

    @property
    def size(self) -> int:
        return self.last if self.last is not None else (self.first or DEFAULT_PAGE)

    @property
    def backward(self) -> bool:
        return self.last is not None


def page_args(
    *,
    first: object = None,  # as the client sent them: checked here
    after: str | None = None,
    last: object = None,
    before: str | None = None,
    default: int = DEFAULT_PAGE,
    maximum: int = MAX_PAGE,
) -> PageArgs:
    """Validate a client's page arguments: first or last (not both; first=`default` when neither), cursors
    that this server issued. Bad values are InvalidInput naming the argument."""
    if first is not None and last is not None:
        raise InvalidInput("Give first or last, not both", field="last")
    for name, cursor in (("after", after), ("before", before)):
        if cursor:
            decode_cursor(cursor, field=name)
    if last is not None:
        return PageArgs(first=None, after=after or None, last=_limit(last, "last", maximum), before=before or None)
    return PageArgs(first=_limit(first, "first", maximum, default), after=after or None, before=before or None)


def _limit(value: object, name: str, maximum: int, default: int = DEFAULT_PAGE) -> int:
    try:
        return clean_limit(value, default=default, maximum=maximum)
    except InvalidInput:
        raise InvalidInput(f"{name} must be an integer between 1 and {maximum}", field=name) from None


def encode_cursor(row: TimestampedModel) -> str:
    raw = f"{row.created_at.isoformat()}|{row.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, field: str = "after") -> tuple[datetime, uuid.UUID]:
    try:
        if not isinstance(cursor, str) or len(cursor) > 200:
            raise ValueError(cursor)
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None:  # we only ever issue UTC cursors
            raise ValueError(created)
        return created_at, uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput(f"{field} is not a valid cursor", field=field) from None


def after_filter(after: str | None, *, oldest_first: bool = False, field: str = "after") -> Q:
    """Rows strictly after the cursor in (created_at, id) order, descending unless `oldest_first`."""
    if not after:
        return Q()
    created_at, row_id = decode_cursor(after, field=field)
    if oldest_first:
        return Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=row_id)
    return Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=row_id)


def _bounds(args: PageArgs, oldest_first: bool) -> Q:
    """after: rows past the cursor in the listing's order; before: rows ahead of it (past it, reversed)."""
    return after_filter(args.after, oldest_first=oldest_first) & after_filter(
        args.before, oldest_first=not oldest_first, field="before"
    )


def page_of(rows: Sequence[T], args: PageArgs) -> Page[T]:
    """The page from rows fetched with limit size+1 in the direction of travel (reversed for `last`): the
    extra row only tells that more exist that way. A cursor we came from means rows exist the other way."""
    size = args.size
    items = list(rows[:size])
    more = len(rows) > size
    if args.backward:
        items.reverse()
        return Page(items=items, has_next_page=bool(args.before), has_previous_page=more)
    return Page(items=items, has_next_page=more, has_previous_page=bool(args.after))


async def paginate(query: QuerySet[T], args: PageArgs, *, oldest_first: bool = False) -> Page[T]:
    """Newest first; `oldest_first` for what reads from its start (a conversation's messages)."""
    ascending = oldest_first != args.backward
    order = ("created_at", "id") if ascending else ("-created_at", "-id")
    rows = await query.filter(_bounds(args, oldest_first)).order_by(*order).limit(args.size + 1)
    page = page_of(rows, args)
    page.count = query.count
    return page


async def children_pages(
    model: type[T],
    parent_column: str,
    parent_ids: Sequence[uuid.UUID],
    args: PageArgs,
    *,
    owner_id: uuid.UUID | None,
    owner_parent: type[Model] | None = None,
    oldest_first: bool = False,
) -> list[Page[T]]:
    """A page of each parent's children, all in one windowed query (same page arguments for every parent)."""
    ascending = oldest_first != args.backward
    keysets = [
        _keyset(cursor, ascending=not oldest_first if name == "before" else oldest_first)
        for name, cursor in (("after", args.after), ("before", args.before))
        if cursor
    ]
    direction = "ASC" if ascending else "DESC"
    grouped = await first_children(
        model,
        parent_column,
        parent_ids,
        args.size + 1,
        owner_id=owner_id,
        owner_parent=owner_parent,
        order=f"created_at {direction}, id {direction}",
        keysets=keysets,
    )
    return [page_of(grouped.get(parent_id, []), args) for parent_id in parent_ids]


async def children_counts(
    model: type[T],
    parent_column: str,
    parent_ids: Sequence[uuid.UUID],
    *,
    owner_id: uuid.UUID,
    owner_parent: type[Model] | None = None,
) -> list[int]:
    """How many children each parent has, in one GROUP BY query (totalCount of nested connections). Only the
    owner's: on the rows' own owner_id column or, for rows without one (a thread's messages), on their parent's
    (`owner_parent`), as `children_pages` does."""
    distinct_ids = list(set(parent_ids))
    query = model.filter(**{f"{parent_column}__in": distinct_ids})
    if owner_parent is None:
        query = query.filter(owner_id=owner_id)
    else:
        owned = owner_parent.filter(id__in=distinct_ids, owner_id=owner_id).values_list("id", flat=True)
        query = query.filter(**{f"{parent_column}__in": Subquery(owned)})
    rows = await query.group_by(parent_column).annotate(rp_count=Count("id")).values(parent_column, "rp_count")
    counts = {uuid.UUID(str(row[parent_column])): int(row["rp_count"]) for row in rows}
    return [counts.get(parent_id, 0) for parent_id in parent_ids]


def _keyset(cursor: str, *, ascending: bool) -> Keyset:
    created_at, row_id = decode_cursor(cursor)
    return Keyset(created_at=created_at, id=row_id, greater=ascending)
