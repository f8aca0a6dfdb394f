"""The one time column type's pure parts: SQLite's stored text sorts as the instants do,
every stored value reads back aware UTC, and what is no time is refused."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest

from vcops.audit import time_text
from vcops.dbtime import parse_stored, stored_text

ZONES = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))]
MOMENTS = [
    datetime(2026, 11, 28, 6, 0, tzinfo=UTC),
    datetime(2026, 11, 28, 6, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 28, 6, 0, 0, 999999, tzinfo=UTC),
    datetime(2026, 11, 28, 6, 0, 1, tzinfo=UTC),
    datetime(2026, 11, 27, 23, 59, 59, 500000, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2030, 1, 1, tzinfo=UTC),
]


def test_stored_text_sorts_as_the_instants_do_whatever_the_written_offset() -> None:
    written = [m.astimezone(z) for m, z in itertools.product(MOMENTS, ZONES)]
    texts = [stored_text(m) for m in written]
    assert len({len(t) for t in texts}) == 1  # fixed width
    assert sorted(texts) == [stored_text(m) for m in sorted(written)]
    assert all(t.endswith("+00:00") for t in texts)


@pytest.mark.parametrize("moment", MOMENTS)
@pytest.mark.parametrize("zone", ZONES)
def test_a_stored_time_reads_back_as_the_same_instant_in_utc(
    moment: datetime, zone: timezone
) -> None:
    back = parse_stored(stored_text(moment.astimezone(zone)))
    assert back == moment and back.tzinfo is UTC
    # the audit hash's text form is unchanged by the round trip
    assert time_text(back) == moment.isoformat()


def test_postgresql_datetimes_are_turned_to_utc() -> None:
    local = datetime(2026, 11, 28, 11, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert parse_stored(local) == local and parse_stored(local).tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "",
        "2026-13-45T99:00:00+00:00",
        "2026-11-28T06:00:00",  # no timezone
        datetime(2026, 11, 28, 6, 0),  # naive
        1764500000,
        "2026-11-28T06:00:00+00:00" + " " * 64,
        None,
    ],
)
def test_what_is_no_time_with_a_timezone_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_stored(value)
