"""The one clock and the one timestamp format: aware UTC datetimes, ISO-8601 with a `Z` on the wire."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso_z(value: datetime) -> str:
    """ISO-8601 with `Z` for UTC: what GraphQL, the REST dialect and the event log all send."""
    return value.isoformat().replace("+00:00", "Z")


def iso(value: datetime | None) -> str | None:
    return iso_z(value) if value is not None else None


def iso_now() -> str:
    return iso_z(now())
