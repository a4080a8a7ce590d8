"""Sensors and belief validation: units, grids (local days across DST), belief times, limits."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from schemas.beliefs import (
    BeliefColumns,
    Limits,
    Sensor,
    load_sensors,
    parse_duration,
    validate,
)
from schemas.documents import parse_model
from schemas.errors import InputError

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2027, 1, 1, tzinfo=UTC)
Q = timedelta(minutes=15)
DEFAULT_LIMITS = Limits()

SENSORS = {
    s.name: s
    for s in [
        Sensor(name="meter", unit="kW"),
        Sensor(name="price", unit="EUR/MWh", event_resolution="PT1H"),
        Sensor(name="soc", unit="%", event_resolution="PT0M"),
        Sensor(name="floored", unit="kW", **{"off-grid": "floor"}),
        Sensor(name="da", unit="EUR/MWh", event_resolution="P1D", timezone="Europe/Amsterdam"),
        Sensor(
            name="da-floor",
            unit="EUR/MWh",
            event_resolution="P1D",
            timezone="Europe/Amsterdam",
            off_grid="floor",
        ),
    ]
}


def us(dt: datetime) -> int:
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def utc(y, m, d, hh=0, mm=0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=UTC)


def batch(sensor="meter", start=T0, values=(1.0, 2.0), res=Q, **kw) -> dict:
    rec = {
        "sensor": sensor,
        "start": start,
        "resolution_ms": res // timedelta(milliseconds=1),
        "values": list(values),
        "belief_time": None,
        "belief_horizon_ms": None,
        "source": "src",
        "cumulative_probability": 0.5,
        "unit": None,
    }
    rec.update(kw)
    return rec


def belief(sensor="meter", start=T0, value=1.0, res=Q, **kw) -> dict:
    rec = {
        "sensor": sensor,
        "event_start": start,
        "event_resolution_ms": res // timedelta(milliseconds=1),
        "event_value": value,
        "belief_time": None,
        "belief_horizon_ms": None,
        "source": "src",
        "cumulative_probability": 0.5,
        "unit": None,
    }
    rec.update(kw)
    return rec


def run(rec, kind="BeliefBatch", now=NOW, limits=DEFAULT_LIMITS):
    return validate(kind, rec, SENSORS, now, limits)


def starts_of(cols) -> list[int]:
    return np.concatenate(cols.event_start_us).tolist() if cols.counts else []


def only(rejections):
    assert len(rejections) == 1, rejections
    return rejections[0]


# --- whole-message rejections -------------------------------------------------------------


def test_unknown_sensor_is_rejected_whole():
    cols, rej = run(batch(sensor="nope"))
    r = only(rej)
    assert len(cols) == 0
    assert (r.error, r.field, r.item) == ("unknown-sensor", "sensor", None)
    assert "'nope' is not registered" in r.reason


def test_non_reading_kind_is_rejected_before_looking_for_a_sensor():
    cols, rej = run({"reason": "r", "error": "e"}, kind="DeadLetter")
    r = only(rej)
    assert len(cols) == 0
    assert (r.error, r.field) == ("bad-schema", "value")
    assert "DeadLetter is not a reading" in r.reason


def test_empty_batch_is_rejected():
    r = only(run(batch(values=[]))[1])
    assert (r.error, r.field) == ("empty-batch", "values")


def test_oversized_batch_is_rejected_and_the_limit_itself_is_fine():
    limits = Limits(max_batch_values=3)
    cols, rej = run(batch(values=[1.0] * 4), limits=limits)
    r = only(rej)
    assert len(cols) == 0
    assert (r.error, r.field) == ("oversized-batch", "values")
    assert "4 values exceed the limit of 3" in r.reason
    cols, rej = run(batch(values=[1.0] * 3), limits=limits)
    assert (len(cols), rej) == (3, [])


@pytest.mark.parametrize("cp", [1.5, -0.1, math.nan])
def test_probability_outside_unit_interval_is_rejected(cp):
    r = only(run(batch(cumulative_probability=cp))[1])
    assert (r.error, r.field) == ("bad-probability", "cumulative_probability")


@pytest.mark.parametrize("cp", [0.0, 1.0])
def test_probability_bounds_are_accepted(cp):
    cols, rej = run(batch(cumulative_probability=cp))
    assert rej == []
    assert cols.cumulative_probability[0].tolist() == [cp, cp]


@pytest.mark.parametrize("source", ["", "   ", None])
def test_empty_source_is_rejected(source):
    r = only(run(batch(source=source))[1])
    assert (r.error, r.field) == ("bad-source", "source")


def test_resolution_mismatch_names_the_field_of_each_kind():
    r = only(run(batch(res=timedelta(minutes=5)))[1])
    assert (r.error, r.field) == ("resolution-mismatch", "resolution_ms")
    assert "300000 ms does not match" in r.reason and "900000 ms" in r.reason
    r = only(run(belief(res=timedelta(hours=1)), kind="Belief")[1])
    assert (r.error, r.field) == ("resolution-mismatch", "event_resolution_ms")


def test_non_positive_batch_resolution_is_rejected():
    r = only(run(batch(sensor="soc", res=timedelta(0)))[1])
    assert (r.error, r.field) == ("bad-resolution", "resolution_ms")


# --- values and units ---------------------------------------------------------------------


def test_non_finite_items_are_rejected_and_the_rest_kept_in_place():
    values = [1.0, math.nan, 3.0, math.inf, -math.inf, 6.0]
    cols, rej = run(batch(values=values))
    assert [(r.error, r.field, r.item) for r in rej] == [
        ("not-finite", "values[1]", 1),
        ("not-finite", "values[3]", 3),
        ("not-finite", "values[4]", 4),
    ]
    assert cols.event_value[0].tolist() == [1.0, 3.0, 6.0]
    assert starts_of(cols) == [us(T0), us(T0 + 2 * Q), us(T0 + 5 * Q)]
    assert cols.counts == [3]


def test_all_non_finite_batch_is_rejected_whole():
    cols, rej = run(batch(values=[math.nan, math.inf]))
    r = only(rej)
    assert len(cols) == 0
    assert (r.error, r.field, r.item) == ("not-finite", "values", None)


def test_non_finite_single_belief_names_event_value():
    cols, rej = run(belief(value=math.nan), kind="Belief")
    assert len(cols) == 0
    assert (only(rej).field, only(rej).item) == ("event_value", None)


def test_megawatts_are_converted_to_the_sensors_kilowatts():
    cols, rej = run(batch(values=[1.5, -0.002], unit="MW"))
    assert rej == []
    np.testing.assert_allclose(cols.event_value[0], [1500.0, -2.0])


def test_price_per_kwh_is_converted_to_per_mwh():
    cols, rej = run(batch(sensor="price", res=timedelta(hours=1), values=[0.25], unit="EUR/kWh"))
    assert rej == []
    assert cols.event_value[0].tolist() == pytest.approx([250.0])


def test_same_unit_is_not_converted():
    cols, _ = run(batch(values=[0.1], unit="kW"))
    assert cols.event_value[0].tolist() == [0.1]


@pytest.mark.parametrize("bad", ["kWh", "EUR", "USD/MWh", "not-a-unit", "(", "1/0"])
def test_incompatible_or_unreadable_unit_is_rejected(bad):
    cols, rej = run(batch(unit=bad))
    r = only(rej)
    assert len(cols) == 0
    assert (r.error, r.field) == ("incompatible-unit", "unit")
    assert repr(bad) in r.reason


# --- instantaneous sensors ----------------------------------------------------------------


def test_instantaneous_series_at_any_spacing_is_stored_with_zero_resolution():
    spacing = timedelta(minutes=7, seconds=3)
    start = utc(2026, 1, 1, 0, 1) + timedelta(seconds=17)
    cols, rej = run(batch(sensor="soc", start=start, values=[0.5, 0.6, 0.7], res=spacing))
    assert rej == []
    expected = [us(start + i * spacing) for i in range(3)]
    assert starts_of(cols) == expected
    assert cols.event_resolution_s[0].tolist() == [0, 0, 0]
    assert cols.belief_time_us[0].tolist() == expected


def test_instantaneous_horizon_is_counted_from_the_instant():
    start = utc(2026, 1, 1, 10)
    rec = batch(sensor="soc", start=start, values=[1.0], res=timedelta(minutes=1))
    rec["belief_horizon_ms"] = 60_000
    cols, _ = run(rec)
    assert cols.belief_time_us[0].tolist() == [us(start - timedelta(minutes=1))]


def test_instantaneous_single_belief_needs_zero_resolution():
    cols, rej = run(belief(sensor="soc", res=timedelta(0), value=0.4), kind="Belief")
    assert (len(cols), rej) == (1, [])
    assert cols.event_resolution_s[0].tolist() == [0]
    r = only(run(belief(sensor="soc", res=Q), kind="Belief")[1])
    assert r.error == "resolution-mismatch"


# --- grids --------------------------------------------------------------------------------


def test_off_grid_start_is_rejected_by_default():
    start = utc(2026, 1, 1, 0, 5)
    r = only(run(batch(start=start))[1])
    assert (r.error, r.field) == ("off-grid", "start")
    assert start.isoformat() in r.reason
    r = only(run(belief(start=start), kind="Belief")[1])
    assert (r.error, r.field) == ("off-grid", "event_start")


def test_off_grid_start_is_floored_when_the_sensor_says_so():
    cols, rej = run(batch(sensor="floored", start=utc(2026, 1, 1, 0, 14), values=[1, 2, 3]))
    assert rej == []
    assert starts_of(cols) == [us(T0), us(T0 + Q), us(T0 + 2 * Q)]


@pytest.mark.parametrize(
    ("start", "ok"),
    [
        (utc(2026, 3, 28, 23), True),  # local midnight of 29 March (CET, +01:00)
        (utc(2026, 3, 29, 22), True),  # local midnight of 30 March (CEST, +02:00)
        (utc(2026, 3, 29, 23), False),  # 01:00 local on 30 March
        (utc(2026, 3, 29, 0), False),  # UTC midnight is 01:00 local
        (utc(2026, 10, 24, 22), True),  # local midnight of 25 October (CEST)
        (utc(2026, 10, 25, 23), True),  # local midnight of 26 October (CET)
        (utc(2026, 10, 25, 22), False),
    ],
)
def test_daily_sensor_grid_is_local_midnight_across_dst(start, ok):
    cols, rej = run(batch(sensor="da", start=start, values=[10.0], res=timedelta(days=1)))
    if ok:
        assert (starts_of(cols), rej) == ([us(start)], [])
    else:
        assert len(cols) == 0
        assert only(rej).error == "off-grid"


@pytest.mark.parametrize(
    ("start", "floored"),
    [
        (utc(2026, 3, 29, 10), utc(2026, 3, 28, 23)),
        (utc(2026, 3, 29, 21, 59), utc(2026, 3, 28, 23)),
        (utc(2026, 3, 30, 5), utc(2026, 3, 29, 22)),
        (utc(2026, 3, 29, 22), utc(2026, 3, 29, 22)),
        (utc(2026, 10, 25, 22), utc(2026, 10, 24, 22)),  # 23:00 local on a 25-hour day
    ],
)
def test_daily_sensor_floors_to_local_midnight(start, floored):
    cols, rej = run(batch(sensor="da-floor", start=start, values=[1.0], res=timedelta(days=1)))
    assert rej == []
    assert starts_of(cols) == [us(floored)]


def test_daily_batch_across_spring_dst_steps_in_local_days():
    cols, rej = run(
        batch(sensor="da", start=utc(2026, 3, 28, 23), values=[1, 2, 3], res=timedelta(days=1))
    )
    assert rej == []
    assert starts_of(cols) == [
        us(utc(2026, 3, 28, 23)),
        us(utc(2026, 3, 29, 22)),
        us(utc(2026, 3, 30, 22)),
    ]
    # Measurements are known at event end: the next local midnight (23 h after the first start).
    assert cols.belief_time_us[0].tolist() == [
        us(utc(2026, 3, 29, 22)),
        us(utc(2026, 3, 30, 22)),
        us(utc(2026, 3, 31, 22)),
    ]


def test_daily_batch_across_autumn_dst_steps_in_local_days():
    cols, rej = run(
        batch(sensor="da", start=utc(2026, 10, 24, 22), values=[1, 2], res=timedelta(days=1))
    )
    assert rej == []
    assert starts_of(cols) == [us(utc(2026, 10, 24, 22)), us(utc(2026, 10, 25, 23))]


# --- belief times -------------------------------------------------------------------------


def test_without_belief_time_or_horizon_beliefs_are_known_at_event_end():
    cols, _ = run(batch(values=[1, 2, 3]))
    assert cols.belief_time_us[0].tolist() == [us(T0 + (i + 1) * Q) for i in range(3)]
    assert cols.event_resolution_s[0].tolist() == [900, 900, 900]


def test_horizon_is_time_between_belief_and_event_end():
    cols, _ = run(batch(values=[1, 2, 3], belief_horizon_ms=3_600_000))
    hour = timedelta(hours=1)
    assert cols.belief_time_us[0].tolist() == [us(T0 + (i + 1) * Q - hour) for i in range(3)]


def test_negative_horizon_means_believed_after_the_end():
    cols, _ = run(batch(values=[1], belief_horizon_ms=-60_000))
    assert cols.belief_time_us[0].tolist() == [us(T0 + Q + timedelta(minutes=1))]


def test_one_belief_time_holds_for_the_whole_series():
    bt = utc(2025, 12, 31, 12)
    cols, _ = run(batch(values=[1, 2, 3], belief_time=bt, belief_horizon_ms=999))
    assert cols.belief_time_us[0].tolist() == [us(bt)] * 3


def test_beliefs_too_far_after_now_are_rejected_per_item():
    now = T0 + timedelta(minutes=30)
    # Event ends at T0+15m, +30m, +45m, +60m; the limit is now + 5 min.
    cols, rej = run(batch(values=[1, 2, 3, 4]), now=now)
    assert [(r.error, r.field, r.item) for r in rej] == [
        ("belief-in-future", "belief_horizon_ms", 2),
        ("belief-in-future", "belief_horizon_ms", 3),
    ]
    assert cols.event_value[0].tolist() == [1.0, 2.0]


def test_limit_itself_is_not_in_the_future():
    now = T0 + Q - timedelta(minutes=5)
    cols, rej = run(batch(values=[1]), now=now)
    assert (len(cols), rej) == (1, [])
    cols, rej = run(batch(values=[1]), now=now - timedelta(microseconds=1))
    assert only(rej).error == "belief-in-future"


def test_all_beliefs_in_the_future_reject_the_whole_message():
    cols, rej = run(batch(values=[1, 2]), now=T0)
    r = only(rej)
    assert len(cols) == 0
    assert (r.error, r.field, r.item) == ("belief-in-future", "belief_horizon_ms", None)
    r = only(run(batch(values=[1, 2], belief_time=T0 + timedelta(hours=1)), now=T0)[1])
    assert r.field == "belief_time"


def test_future_and_non_finite_items_are_each_reported_once():
    now = T0 + timedelta(minutes=15)
    cols, rej = run(batch(values=[1, math.nan, 3]), now=now)
    assert [(r.error, r.item) for r in rej] == [("not-finite", 1), ("belief-in-future", 2)]
    assert cols.event_value[0].tolist() == [1.0]


def test_absurd_horizon_or_span_is_rejected_not_raised():
    r = only(run(batch(values=[1], belief_horizon_ms=2**62))[1])
    assert (r.error, r.field) == ("bad-horizon", "belief_horizon_ms")
    r = only(run(batch(values=[1], belief_horizon_ms=-(2**62)))[1])
    assert r.error == "bad-horizon"
    huge = timedelta(milliseconds=2**50)
    r = only(run(batch(sensor="soc", values=[1, 2], res=huge))[1])
    assert (r.error, r.field) == ("bad-resolution", "resolution_ms")


# --- columns ------------------------------------------------------------------------------


def test_to_arrow_has_the_tables_column_order_and_types():
    a, _ = run(batch(values=[1, 2], cumulative_probability=0.1))
    b, _ = run(belief(sensor="price", res=timedelta(hours=1), value=7.0), kind="Belief")
    a.extend(b)
    assert len(a) == 3
    t = a.to_arrow()
    assert t.column_names == [
        "sensor",
        "event_start",
        "event_resolution",
        "belief_time",
        "source",
        "cumulative_probability",
        "event_value",
    ]
    ts = pa.timestamp("us", tz="UTC")
    assert t.schema.field("event_start").type == ts
    assert t.schema.field("belief_time").type == ts
    assert t.schema.field("event_resolution").type == pa.uint32()
    assert t.schema.field("event_value").type == pa.float64()
    assert t.column("sensor").to_pylist() == ["meter", "meter", "price"]
    assert t.column("event_start").to_pylist() == [T0, T0 + Q, T0]
    assert t.column("belief_time").to_pylist() == [T0 + Q, T0 + 2 * Q, T0 + timedelta(hours=1)]
    assert t.column("event_resolution").to_pylist() == [900, 900, 3600]
    assert t.column("cumulative_probability").to_pylist() == [0.1, 0.1, 0.5]
    assert t.column("event_value").to_pylist() == [1.0, 2.0, 7.0]


def test_concat_is_extend_with_each_part_in_order():
    parts = [
        run(batch(values=[1, 2]))[0],
        run(belief(sensor="price", res=timedelta(hours=1), value=7.0), kind="Belief")[0],
        BeliefColumns(),
        run(belief(value=3.0, source="other"), kind="Belief")[0],
    ]
    one_by_one = BeliefColumns()
    for p in parts:
        one_by_one.extend(p)
    joined = BeliefColumns.concat(parts)
    assert joined.to_arrow().equals(one_by_one.to_arrow())
    assert (joined.sensor, joined.source, joined.counts) == (
        ["meter", "price", "meter"],
        ["src", "src", "other"],
        [2, 1, 1],
    )
    assert len(BeliefColumns.concat([])) == 0


def test_empty_columns_make_an_empty_table_with_the_same_schema():
    t = BeliefColumns().to_arrow()
    assert t.num_rows == 0
    assert t.schema.field("event_start").type == pa.timestamp("us", tz="UTC")


# --- sensors and durations ----------------------------------------------------------------


def test_sensor_defaults_and_alias():
    s = Sensor(name="x", unit="kW")
    assert (s.event_resolution, s.timezone, s.off_grid) == (Q, "UTC", "reject")
    assert (
        Sensor.model_validate({"name": "x", "unit": "kW", "off-grid": "floor"}).off_grid == "floor"
    )


@pytest.mark.parametrize(
    ("item", "field", "words"),
    [
        ({"unit": "furlong_per_fortnightz"}, "unit", "unknown unit"),
        ({"unit": "("}, "unit", "unknown unit"),
        ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
        ({"event_resolution": "-PT15M"}, "event_resolution", "negative"),
        ({"event_resolution": "soon"}, "event_resolution", "ISO 8601"),
        ({"off-grid": "round"}, "off-grid", "reject"),
        ({"colour": "red"}, "colour", "Extra inputs"),
    ],
)
def test_bad_sensor_fields_are_named(item, field, words):
    with pytest.raises(InputError) as info:
        parse_model(Sensor, {"name": "x", "unit": "kW", **item})
    assert info.value.field == field
    assert words in str(info.value)


def test_load_sensors_names_the_item_in_a_list():
    data = [{"name": "a", "unit": "kW"}, {"name": "b", "unit": "parsecs_per_kW"}]
    with pytest.raises(InputError) as info:
        load_sensors(data)
    assert info.value.field == "sensors[1].unit"


def test_load_sensors_from_mapping_and_wrapped_list():
    out = load_sensors(
        {"sensors": {"a": {"unit": "kW"}, "b": {"unit": "MW", "event_resolution": "PT1H"}}}
    )
    assert sorted(out) == ["a", "b"]
    assert out["b"].event_resolution == timedelta(hours=1)
    out = load_sensors({"sensors": [{"name": "c", "unit": "%", "event_resolution": "PT0M"}]})
    assert out["c"].event_resolution == timedelta(0)


def test_load_sensors_rejects_a_scalar():
    with pytest.raises(InputError) as info:
        load_sensors("meter", where="config.sensors")
    assert info.value.field == "config.sensors"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT15M", Q),
        ("PT1H", timedelta(hours=1)),
        ("P1D", timedelta(days=1)),
        ("PT0M", timedelta(0)),
    ],
)
def test_parse_duration(text, expected):
    assert parse_duration(text, "f") == expected


@pytest.mark.parametrize("bad", ["P1M", "15 minutes", "", 900, None])
def test_parse_duration_rejects_non_iso_or_calendar_months(bad):
    with pytest.raises(InputError) as info:
        parse_duration(bad, "event_resolution")
    assert info.value.field == "event_resolution"
    assert "PT15M" in str(info.value)


# --- invariant ----------------------------------------------------------------------------

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])


@settings(max_examples=examples(150))
@given(st.lists(st.one_of(finite, non_finite), min_size=1, max_size=60))
def test_kept_plus_rejected_is_n_and_kept_are_the_finite_values_in_order(values):
    cols, rej = run(batch(values=values))
    expected = [v for v in values if math.isfinite(v)]
    if not expected:
        assert len(cols) == 0 and only(rej).field == "values"
        return
    assert len(cols) + len(rej) == len(values)
    assert [r.item for r in rej] == [i for i, v in enumerate(values) if not math.isfinite(v)]
    assert cols.event_value[0].tolist() == expected
    kept_idx = [i for i, v in enumerate(values) if math.isfinite(v)]
    assert starts_of(cols) == [us(T0 + i * Q) for i in kept_idx]
