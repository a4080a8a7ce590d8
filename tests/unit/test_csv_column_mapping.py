"""CSV import with the user's column names, delimiter and time zone (``flexstream publish``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from connectors.files import ColumnMap, read_csv
from schemas.errors import InputError
from streams.cli import main

AMS = "Europe/Amsterdam"
Q = timedelta(minutes=15)


def read(text: str, **kw):
    kw.setdefault("sensor", "pv")
    return read_csv(io.StringIO(text), **kw)


def refused(text: str, **kw) -> InputError:
    with pytest.raises(InputError) as info:
        read(text, **kw)
    return info.value


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_mapped_columns_are_read_as_event_start_and_value():
    text = "time,value\n2026-01-01T00:00Z,1.5\n2026-01-01T00:15Z,2\n"
    [r] = read(text, columns=ColumnMap("time", "value"))
    assert (r.record["start"], r.record["values"]) == (utc(2026, 1, 1), [1.5, 2.0])


def test_the_fixed_columns_still_work_by_default():
    [r] = read("event_start,event_value\n2026-01-01T00:00Z,1\n", resolution=Q)
    assert r.record["event_value"] == 1.0


def test_a_belief_time_column_of_another_name():
    text = "t,v,published\n2026-01-02T00:00Z,1,2026-01-01T12:00Z\n"
    [r] = read(text, columns=ColumnMap("t", "v", "published"), resolution=Q)
    assert r.record["belief_time"] == utc(2026, 1, 1, 12)


def test_an_unmapped_time_value_csv_says_which_option_to_use():
    err = refused("time,value\n2026-01-01T00:00Z,1\n")
    assert err.field == "event_start"
    assert "--datetime-column" in str(err) and "'time', 'value'" in str(err)


def test_a_mapped_column_that_is_missing_names_it_and_the_header():
    err = refused("time,value\n2026-01-01T00:00Z,1\n", columns=ColumnMap("time", "power"))
    assert err.field == "power"
    assert str(err) == (
        "power: the CSV has no column 'power' (--value-column); the header names 'time', 'value'"
    )


def test_a_mapped_column_beside_the_one_it_replaces_is_refused():
    text = "time,event_start,event_value\n2026-01-01T00:00Z,2026-01-01T00:00Z,1\n"
    err = refused(text, columns=ColumnMap("time"))
    assert err.field == "event_start" and "besides 'time'" in str(err)


def test_two_options_naming_one_column_are_refused():
    err = refused("t,v\n2026-01-01T00:00Z,1\n", columns=ColumnMap("t", "v", "t"))
    assert err.field == "--belief-time-column"


def test_errors_name_the_column_as_the_csv_does():
    err = refused("time,power\n2026-01-01T00:00Z,abc\n", columns=ColumnMap("time", "power"))
    assert err.field == "power" and "'abc' (row 1) is not a number" in str(err)
    err = refused("time,power\n2026-01-01T00:00,1\n", columns=ColumnMap("time", "power"))
    assert err.field == "time" and "(row 1) has no UTC offset" in str(err)
    assert "--timezone" in str(err)


def test_a_semicolon_delimiter_and_a_hint_when_it_is_missing():
    text = "time;value\n2026-01-01T00:00Z;1\n2026-01-01T00:15Z;2\n"
    [r] = read(text, columns=ColumnMap("time", "value"), delimiter=";")
    assert r.record["values"] == [1.0, 2.0]
    err = refused(text, columns=ColumnMap("time", "value"))
    assert "pass --delimiter" in str(err)


@pytest.mark.parametrize("tab", ["tab", "\\t", "\t"])
def test_a_tab_delimiter(tab):
    [r] = read("event_start\tevent_value\n2026-01-01T00:00Z\t3\n", delimiter=tab, resolution=Q)
    assert r.record["event_value"] == 3.0


@pytest.mark.parametrize("bad", ["", ";;", '"', "\n"])
def test_a_delimiter_must_be_one_usable_character(bad):
    assert refused("event_start,event_value\n", delimiter=bad).field == "--delimiter"


def test_naive_times_are_read_in_the_timezone():
    text = "time,value\n2026-01-01 00:00,1\n2026-01-01 00:15,2\n2026-07-01 00:00,3\n"
    got = read(text, columns=ColumnMap("time", "value"), timezone=AMS, resolution=Q)
    assert [r.record.get("start", r.record.get("event_start")) for r in got] == [
        utc(2025, 12, 31, 23),
        utc(2026, 6, 30, 22),
    ]


def test_times_with_an_offset_keep_it_when_a_timezone_is_given():
    text = "event_start,event_value\n2026-01-01T00:00+05:00,1\n2026-01-01T00:00,2\n"
    got = read(text, timezone=AMS, resolution=Q)
    assert [r.record["event_start"] for r in got] == [utc(2025, 12, 31, 19), utc(2025, 12, 31, 23)]


def test_an_unknown_timezone_is_refused():
    err = refused("event_start,event_value\n", timezone="Mars/Olympus")
    assert err.field == "--timezone" and "IANA" in str(err)


def test_a_time_that_does_not_exist_names_the_row():
    text = "event_start,event_value\n2026-03-29 01:45,1\n2026-03-29 02:00,2\n"
    err = refused(text, timezone=AMS, resolution=Q)
    assert "'2026-03-29 02:00' (row 2) does not exist in Europe/Amsterdam" in str(err)


# The night clocks go back: 25 October 2026, 03:00 CEST becomes 02:00 CET.
FALL_BACK = [
    "2026-10-25 01:45",
    "2026-10-25 02:00",
    "2026-10-25 02:15",
    "2026-10-25 02:30",
    "2026-10-25 02:45",
    "2026-10-25 02:00",
    "2026-10-25 02:15",
    "2026-10-25 02:30",
    "2026-10-25 02:45",
    "2026-10-25 03:00",
]


def test_the_repeated_hour_is_told_apart_by_the_order_of_the_rows():
    text = "event_start,event_value\n" + "".join(f"{t},{i}\n" for i, t in enumerate(FALL_BACK))
    [r] = read(text, timezone=AMS)
    # One evenly spaced run in UTC: 23:45 ... 01:00 (the second 02:00 is 01:00 UTC).
    assert (r.record["start"], r.record["resolution_ms"]) == (utc(2026, 10, 24, 23, 45), 900_000)
    assert r.record["values"] == [float(i) for i in range(10)]


def test_an_ambiguous_time_its_rows_cannot_settle_names_the_row_and_both_offsets():
    text = "event_start,event_value\n2026-10-25 01:00,1\n2026-10-25 02:30,2\n"
    err = refused(text, timezone=AMS, resolution=timedelta(hours=1))
    assert err.field == "event_start"
    assert "'2026-10-25 02:30' (row 2) occurs twice in Europe/Amsterdam" in str(err)
    assert "2026-10-25T02:30:00+02:00 or 2026-10-25T02:30:00+01:00" in str(err)


def test_the_repeated_hour_is_told_apart_per_sensor():
    hourly = ["2026-10-25 01:00", "2026-10-25 02:00", "2026-10-25 02:00", "2026-10-25 03:00"]
    lines = [f"{s},{t},1" for s in ("a", "b") for t in hourly]
    got = read("sensor,event_start,event_value\n" + "\n".join(lines) + "\n", timezone=AMS)
    assert [(r.key, r.record["start"], len(r.record["values"])) for r in got] == [
        ("a", utc(2026, 10, 24, 23), 4),
        ("b", utc(2026, 10, 24, 23), 4),
    ]


HOSTILE = (
    "\ufeff"  # a byte-order mark, as spreadsheets write
    "Tijd;Vermogen (kW);source\r\n"
    "\r\n"
    '2026-10-25 02:00;1.5;"meter; north"\r\n'
    "\r\n"
    '2026-10-25 02:15;2;"meter; north"\r\n'
    '2026-10-25 02:00;3;"meter; north"\r\n'
    '2026-10-25 02:15;NaN;"meter; north"\r\n'
)


def test_a_hostile_csv_is_refused_at_the_nan_naming_its_row_after_blank_lines():
    cols = ColumnMap("Tijd", "Vermogen (kW)")
    err = refused(HOSTILE, columns=cols, delimiter=";", timezone=AMS)
    assert err.field == "Vermogen (kW)"
    assert "'NaN' (row 4) is not a number" in str(err)


def test_a_hostile_csv_without_its_nan_reads_the_repeated_hour_in_order():
    cols = ColumnMap("Tijd", "Vermogen (kW)")
    text = HOSTILE.replace("NaN", "4")
    got = read(text, columns=cols, delimiter=";", timezone=AMS)
    # 02:00 and 02:15 summer time (00:00, 00:15 UTC), then winter time (01:00, 01:15 UTC).
    assert [(r.record["start"], r.record["values"]) for r in got] == [
        (utc(2026, 10, 25, 0), [1.5, 2.0]),
        (utc(2026, 10, 25, 1), [3.0, 4.0]),
    ]
    assert {r.record["source"] for r in got} == {"meter; north"}


def test_a_quoted_comma_stays_inside_its_value():
    text = 'event_start,event_value,source\n2026-01-01T00:00Z,1,"meter, north"\n'
    [r] = read(text, resolution=Q)
    assert r.record["source"] == "meter, north"


def test_publish_maps_columns_and_refuses_before_contacting_the_broker():
    res = CliRunner().invoke(
        main,
        ["publish", "--topic", "meter", "--sensor", "pv", "--datetime-column", "time"],
        input="time,value\n2026-01-01T00:00Z,1\n",
    )
    assert res.exit_code == 2
    assert "--value-column" in res.stderr and "Traceback" not in res.stderr
    res = CliRunner().invoke(
        main,
        ["publish", "--topic", "meter", "--sensor", "pv", "--timezone", "Nowhere/Else"],
        input="event_start,event_value\n",
    )
    assert res.exit_code == 2 and res.stderr.startswith("error: --timezone:")
