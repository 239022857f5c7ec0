"""The Date and DateTime scalars, documented (@specifiedBy) and in one format.

DateTime is RFC 3339 in UTC with its offset written `+00:00` (Python's isoformat of an aware UTC time): every
DateTime field, RunEvent.createdAt included. (The REST dialect writes `Z` at its own edge; both are RFC 3339.)
Inputs take any RFC 3339 time with an offset (`Z` too). Date is RFC 3339 full-date (YYYY-MM-DD).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry

from runplane.clock import utc

DATETIME_SPEC = "https://scalars.graphql.org/andimarek/date-time.html"
DATE_SPEC = "https://scalars.graphql.org/andimarek/local-date.html"
UTC = dt.UTC


def serialize_datetime(value: dt.datetime) -> str:
    """GraphQL's form of runplane.clock's UTC time: `+00:00` where the REST dialect writes `Z`."""
    return utc(value).isoformat()


def parse_datetime(value: Any) -> dt.datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("DateTime must be an RFC 3339 string")
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("DateTime needs an offset (Z or +00:00)")
    return parsed.astimezone(UTC)


def parse_date(value: Any) -> dt.date:
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("Date must be YYYY-MM-DD")
    return dt.date.fromisoformat(value)


DateTime = strawberry.scalar(
    dt.datetime,
    name="DateTime",
    description="An RFC 3339 date-time in UTC, e.g. 2026-12-02T17:24:56.123456+00:00.",
    specified_by_url=DATETIME_SPEC,
    serialize=serialize_datetime,
    parse_value=parse_datetime,
)
Date = strawberry.scalar(
    dt.date,
    name="Date",
    description="An RFC 3339 full-date, e.g. 2026-12-02 (a UTC day).",
    specified_by_url=DATE_SPEC,
    serialize=dt.date.isoformat,
    parse_value=parse_date,
)
SCALAR_OVERRIDES: dict[object, Any] = {dt.datetime: DateTime, dt.date: Date}
