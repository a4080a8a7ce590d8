"""Pure parts of publishing: default belief times, sensor checks, landing tally, dead letters."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

from connectors.files import read_csv
from connectors.landing import DeadLetterInfo, dead_letter_info, tally
from connectors.reading_check import check_readings
from schemas import serde
from schemas.beliefs import Rejection, Sensor
from schemas.errors import InputError
from streams.cli.dead_letters import parse_since, select
from streams.cli.publish import landing_lines, parse_belief_time
from streams.ingest.step import RawMessage, dead_letter

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SENSORS = {
    "load": Sensor(name="load", unit="kW", event_resolution="PT15M"),
    "soc": Sensor(name="soc", unit="kWh", event_resolution="PT0M"),
}


def readings(text: str, **kw):
    return read_csv(io.StringIO(text), **kw)


TWO = "sensor,event_start,event_value\nload,2026-03-02T00:00Z,1\nload,2026-03-02T00:15Z,2\n"


def test_rows_without_belief_columns_get_the_given_belief_time():
    (r,) = readings(TWO, belief_time=NOW)
    assert r.record["belief_time"] == NOW and r.record["belief_horizon_ms"] is None
    (r,) = readings(TWO, belief_horizon=timedelta(days=1))
    assert r.record["belief_time"] is None and r.record["belief_horizon_ms"] == 86_400_000
    (r,) = readings(TWO)
    assert r.record["belief_time"] is None and r.record["belief_horizon_ms"] is None


def test_belief_columns_of_the_csv_win_over_the_default():
    text = (
        "sensor,event_start,event_value,belief_time,belief_horizon\n"
        "load,2026-03-02T00:00Z,1,2026-02-01T00:00Z,\n"
        "load,2026-03-02T00:15Z,2,,PT1H\n"
        "load,2026-03-02T00:30Z,3,,\n"
    )
    rs = readings(text, belief_time=NOW, resolution=timedelta(minutes=15))
    got = [(r.row, r.record["belief_time"], r.record["belief_horizon_ms"]) for r in rs]
    assert got == [
        (1, datetime(2026, 2, 1, tzinfo=UTC), None),
        (2, None, 3_600_000),
        (3, NOW, None),
    ]


def test_belief_time_and_horizon_together_are_refused():
    with pytest.raises(InputError, match="not both"):
        readings(TWO, belief_time=NOW, belief_horizon=timedelta(0))


def test_parse_belief_time():
    assert parse_belief_time("now", now=NOW) == NOW
    assert parse_belief_time("2026-03-01T13:00+01:00") == NOW
    with pytest.raises(InputError, match="--belief-time"):
        parse_belief_time("2026-03-01T13:00")
    with pytest.raises(InputError, match="--belief-time"):
        parse_belief_time("tomorrow")


def test_check_names_an_unknown_sensor_and_its_row():
    text = TWO + "heat,2026-03-02T00:00Z,1\nheat,2026-03-02T00:15Z,2\n"
    with pytest.raises(InputError, match=r"sensor 'heat' \(row 3\) is not registered") as exc:
        check_readings(readings(text), SENSORS)
    assert exc.value.field == "sensor"


def test_check_refuses_an_unconvertible_unit_and_accepts_a_convertible_one():
    check_readings(readings(TWO, unit="MW"), SENSORS)
    with pytest.raises(InputError, match="unit 'EUR/MWh' .row 1. cannot be converted"):
        check_readings(readings(TWO, unit="EUR/MWh"), SENSORS)


def test_check_refuses_another_resolution_but_not_for_instantaneous_series():
    hourly = "sensor,event_start,event_value\nload,2026-03-02T00:00Z,1\nload,2026-03-02T01:00Z,2\n"
    with pytest.raises(InputError, match="PT1H apart.*PT15M"):
        check_readings(readings(hourly), SENSORS)
    check_readings(readings(hourly.replace("load", "soc")), SENSORS)


def _letter(partition: int, offset: int, error: str = "belief-in-future") -> DeadLetterInfo:
    return DeadLetterInfo(NOW, error, "belief_time", "r", partition, offset, None, "why", "pv")


def test_tally_sorts_published_messages_by_what_became_of_them():
    published = [("r", 0, 5), ("r", 0, 6), ("r", 1, 2), ("r", 1, 3)]
    committed = {("r", 0): 7, ("r", 1): 3}
    letters = [_letter(0, 6), _letter(0, 6, "not-finite"), _letter(0, 4), _letter(2, 6)]
    out = tally(published, committed, letters)
    assert (out.published, out.stored, out.dead_lettered, out.pending) == (4, 2, 1, 1)
    assert [d.error for d in out.dead_letters] == ["belief-in-future", "not-finite"]
    assert not out.done
    assert tally(published, {}, []).pending == 4
    lines = landing_lines(out)
    assert lines[0] == "landed: 2 messages stored, 1 dead-lettered, 1 not handled yet"
    assert lines[1] == "  r[0]@6: belief-in-future (belief_time): why"


def test_dead_letters_decode_with_their_sensor():
    original = serde.encode(
        "Belief",
        {
            "sensor": "pv",
            "event_start": NOW,
            "event_resolution_ms": 900_000,
            "event_value": 1.0,
            "source": "x",
        },
    )
    for key in (b"pv", None):
        msg = RawMessage("t.readings.meter", 2, 41, key, original)
        rec = dead_letter(msg, Rejection("off-grid", "not on the grid", "event_start"), NOW)
        info = dead_letter_info(serde.encode("DeadLetter", rec))
        assert info.sensor == "pv"
        assert info.where == "t.readings.meter[2]@41"
        assert (info.error, info.field, info.rejected_at) == ("off-grid", "event_start", NOW)


def test_since_and_selection():
    assert parse_since("P1D", now=NOW) == NOW - timedelta(days=1)
    assert parse_since("2026-03-01T12:00Z") == NOW
    for bad in ("yesterday", "2026-03-01T12:00", "-P1D"):
        with pytest.raises(InputError, match="--since"):
            parse_since(bad, now=NOW)
    old = DeadLetterInfo(NOW - timedelta(days=2), "e", None, "r", 0, 0, None, "x", "pv")
    new = DeadLetterInfo(NOW, "e", None, "r", 0, 1, None, "x", "load")
    assert select([new, old], None, None, 50) == [old, new]
    assert select([new, old], NOW - timedelta(days=1), None, 50) == [new]
    assert select([new, old], None, "pv", 50) == [old]
    assert select([old, new], None, None, 1) == [new]
