"""Keyset pagination over (created_at, id), newest first, with opaque cursors."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.queryset import QuerySet

from runplane.errors import InvalidInput

T = TypeVar("T", bound=Model)


@dataclass
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    has_previous_page: bool

    @property
    def end_cursor(self) -> str | None:
        return encode_cursor(self.items[-1]) if self.items else None

    @property
    def start_cursor(self) -> str | None:
        return encode_cursor(self.items[0]) if self.items else None


def encode_cursor(row: Model) -> str:
    raw = f"{row.created_at.isoformat()}|{row.pk}"  # type: ignore[attr-defined]
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, row_id = base64.urlsafe_b64decode(padded.encode()).decode().split("|", 1)
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None:  # we only ever issue UTC cursors
            raise ValueError(created)
        return created_at, uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("after is not a valid cursor", field="after") from None


def after_filter(after: str | None, *, oldest_first: bool = False) -> Q:
    """Rows strictly after the cursor in (created_at, id) order, descending unless `oldest_first`."""
    if not after:
        return Q()
    created_at, row_id = decode_cursor(after)
    if oldest_first:
        return Q(created_at__gt=created_at) | Q(created_at=created_at, id__gt=row_id)
    return Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=row_id)


async def paginate(query: QuerySet[T], *, first: int, after: str | None, oldest_first: bool = False) -> Page[T]:
    """Newest first; `oldest_first` for what reads from its start (a conversation's messages)."""
    order = ("created_at", "id") if oldest_first else ("-created_at", "-id")
    rows = await query.filter(after_filter(after, oldest_first=oldest_first)).order_by(*order).limit(first + 1)
    return Page(items=list(rows[:first]), has_next_page=len(rows) > first, has_previous_page=bool(after))
