"""One clock, one timestamp format: the REST/event-log form and GraphQL's differ only in how they write UTC."""

from datetime import UTC, datetime, timedelta, timezone

from runplane.clock import iso, iso_z, utc
from runplane.schema.scalars import serialize_datetime

BERLIN_WINTER = timezone(timedelta(hours=1))


def test_every_time_is_written_in_utc_with_z() -> None:
    assert iso_z(datetime(2026, 12, 2, 17, 24, 56, 123456, tzinfo=UTC)) == "2026-12-02T17:24:56.123456Z"
    assert iso_z(datetime(2026, 12, 2, 18, 24, 56, tzinfo=BERLIN_WINTER)) == "2026-12-02T17:24:56Z"
    assert iso_z(datetime(2026, 12, 2, 17, 24, 56)) == "2026-12-02T17:24:56Z", "a naive time is UTC"
    assert iso(None) is None


def test_graphql_writes_the_same_instant_with_its_offset() -> None:
    local = datetime(2026, 12, 2, 18, 24, 56, tzinfo=BERLIN_WINTER)
    assert serialize_datetime(local) == "2026-12-02T17:24:56+00:00"
    assert serialize_datetime(local).replace("+00:00", "Z") == iso_z(local)
    assert utc(local) == local and utc(local).tzinfo is UTC
