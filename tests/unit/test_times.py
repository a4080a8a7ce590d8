"""The time helpers: microseconds, aware datetimes, ISO 8601 durations (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import isodate
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

from schemas.errors import InputError
from schemas.times import (
    NAIVE,
    UNREADABLE,
    aware,
    engine_time,
    floor_time,
    format_duration,
    format_utc,
    from_engine_time,
    from_us,
    parse_aware,
    parse_duration,
    to_us,
)

#: The range of the history's times.
instants = st.datetimes(
    min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2299, 12, 31, 23, 59, 59, 999_999),  # noqa: DTZ001
    timezones=st.just(UTC),
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
durations = st.timedeltas(min_value=timedelta(days=-40_000), max_value=timedelta(days=40_000))


@given(instants)
def test_microseconds_round_trip(t):
    assert from_us(to_us(t)) == t
    assert from_us(to_us(t)).tzinfo is UTC


@given(instants, offsets)
def test_microseconds_do_not_depend_on_the_offset(t, tz):
    assert to_us(t.astimezone(tz)) == to_us(t)


def test_microseconds_of_known_instants():
    assert to_us(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert to_us(datetime(1970, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == 0
    assert to_us(datetime(1900, 1, 1, tzinfo=UTC)) == -2_208_988_800_000_000
    assert from_us(1) == datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)


@given(durations)
def test_a_formatted_duration_reads_back(d):
    assert parse_duration(format_duration(d), "f") == d


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=364, hours=23)))
def test_durations_are_written_as_isodate_and_pydantic_write_them(d):
    if d:
        assert format_duration(d) == TypeAdapter(timedelta).dump_python(d, mode="json")
        assert format_duration(d) == isodate.duration_isoformat(d)


@pytest.mark.parametrize(
    ("d", "text"),
    [
        (timedelta(minutes=15), "PT15M"),
        (timedelta(hours=1), "PT1H"),
        (timedelta(days=1), "P1D"),
        (timedelta(days=1, minutes=15), "P1DT15M"),
        (timedelta(seconds=90), "PT1M30S"),
        (timedelta(seconds=1.5), "PT1.5S"),
        (timedelta(microseconds=1), "PT0.000001S"),
        (timedelta(days=400), "P400D"),
        (timedelta(minutes=-15), "-PT15M"),
    ],
)
def test_format_duration(d, text):
    assert format_duration(d) == text


@pytest.mark.parametrize("zero", ["PT0S", "PT0M", "P0D"])
def test_a_zero_duration_is_written_as_the_caller_asks(zero):
    assert format_duration(timedelta(0), zero) == zero
    assert parse_duration(zero, "f") == timedelta(0)


def test_parse_duration_may_require_a_positive_duration():
    assert parse_duration("PT0M", "f") == timedelta(0)
    assert parse_duration("-PT15M", "f") == timedelta(minutes=-15)
    for text in ("PT0M", "-PT15M", timedelta(0)):
        with pytest.raises(InputError, match="must be positive") as err:
            parse_duration(text, "resolution", positive=True)
        assert err.value.field == "resolution"
    assert parse_duration(" PT15M ", "f", positive=True) == timedelta(minutes=15)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("15 minutes", "cannot read '15 minutes' as a duration"),
        (15, "cannot read 15"),
        ("P1M", "months or years"),
    ],
)
def test_parse_duration_names_the_field(value, message):
    with pytest.raises(InputError, match=message) as err:
        parse_duration(value, "event_resolution")
    assert err.value.field == "event_resolution"


def test_parse_aware_keeps_the_offset_or_converts_to_utc():
    cet = timezone(timedelta(hours=2))
    assert parse_aware("2026-04-01T12:00+02:00", "t") == datetime(2026, 4, 1, 12, tzinfo=cet)
    assert parse_aware("2026-04-01T12:00+02:00", "t").utcoffset() == timedelta(hours=2)
    assert parse_aware(" 2026-04-01T10:00Z ", "t", utc=True) == datetime(2026, 4, 1, 10, tzinfo=UTC)
    assert parse_aware("2026-04-01T12:00+02:00", "t", utc=True).tzinfo is UTC
    given_dt = datetime(2026, 4, 1, tzinfo=cet)
    assert parse_aware(given_dt, "t") is given_dt


def test_parse_aware_words_its_errors_as_the_caller_asks():
    with pytest.raises(InputError) as err:
        parse_aware("tomorrow", "--start")
    assert str(err.value) == "--start: " + UNREADABLE.format(value="tomorrow")
    assert err.value.field == "--start"
    with pytest.raises(InputError) as err:
        parse_aware("2026-04-01T00:00", "--start")
    assert str(err.value) == "--start: " + NAIVE.format(value="2026-04-01T00:00")
    with pytest.raises(InputError, match=r"^--end: cannot read 'x' as an ISO 8601 time$"):
        parse_aware("x", "--end", unreadable="cannot read {value!r} as an ISO 8601 time")
    with pytest.raises(InputError, match=r"^--end: give an offset$"):
        parse_aware("2026-04-01T00:00", "--end", naive="give an offset")
    with pytest.raises(InputError, match="expected an ISO 8601 datetime string, got 5"):
        parse_aware(5, "start")


@given(instants, offsets)
def test_parse_aware_reads_what_isoformat_writes(t, tz):
    local = t.astimezone(tz)
    assert parse_aware(local.isoformat(), "t") == local
    assert parse_aware(format_utc(local), "t", utc=True) == t


def test_aware_refuses_naive_and_non_datetimes():
    naive = datetime(2026, 1, 1)  # noqa: DTZ001 - naive on purpose
    cet = timezone(timedelta(hours=1))
    assert aware(datetime(2026, 1, 1, 1, tzinfo=cet), "start") == datetime(2026, 1, 1, tzinfo=UTC)
    assert aware(datetime(2026, 1, 1, 1, tzinfo=cet), "start", utc=False).tzinfo is cet
    with pytest.raises(
        InputError, match=r"^start: 2026-01-01T00:00:00 has no UTC offset; pass an aware"
    ):
        aware(naive, "start")
    with pytest.raises(InputError, match=r"^window_start: must be timezone-aware$") as err:
        aware(naive, "window_start", naive="must be timezone-aware")
    assert err.value.field == "window_start"
    with pytest.raises(InputError, match="expected a datetime, got str"):
        aware("2026-01-01T00:00Z", "start")


def test_floor_time_floors_since_the_epoch_and_keeps_the_zone():
    cet = timezone(timedelta(hours=1))
    t = datetime(2026, 4, 1, 12, 40, 7, tzinfo=cet)
    assert floor_time(t, timedelta(minutes=15)) == datetime(2026, 4, 1, 12, 30, tzinfo=cet)
    assert floor_time(t, timedelta(minutes=15)).tzinfo is cet
    assert floor_time(t, timedelta(days=1)) == datetime(2026, 4, 1, tzinfo=UTC)


@given(instants, offsets)
def test_engine_times_round_trip(t, tz):
    assert from_engine_time(engine_time(t.astimezone(tz))) == t


def test_format_utc():
    cet = timezone(timedelta(hours=2))
    assert format_utc(datetime(2026, 4, 1, 2, tzinfo=cet)) == "2026-04-01T00:00:00Z"
    t = datetime(2026, 4, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert format_utc(t, "milliseconds") == "2026-04-01T00:00:00.123Z"
