"""The one clock and the one timestamp format: aware UTC datetimes, ISO-8601 with a `Z` for UTC.

`iso_z` is what the REST dialect, the event log and the bus send, and what the server's own files hold. GraphQL's
DateTime scalar writes the same instant with `+00:00` (schema/scalars.py, documented in the README's GraphQL
section): that is the GraphQL edge's format, and it takes its UTC from `utc` here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def utc(value: datetime) -> datetime:
    """The same instant in UTC; a naive time is taken as UTC (the database stores UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if value.utcoffset() == timedelta(0) else value.astimezone(UTC)


def iso_z(value: datetime) -> str:
    """ISO-8601 in UTC with `Z`: 2026-12-02T17:24:56.123456Z."""
    return utc(value).isoformat().replace("+00:00", "Z")


def iso(value: datetime | None) -> str | None:
    return iso_z(value) if value is not None else None


def iso_now() -> str:
    return iso_z(now())
