"""A single ``Belief`` is validated exactly like the same reading in numpy arrays.

``validate`` checks a ``Belief`` whose value is a plain float (what Avro decodes)
with Python numbers, and everything else with numpy arrays. The property below
holds each generated single reading against two references, both of which take
the array way:

1. the same record with its value as a numpy ``float64`` (not exactly a float, so
   ``validate`` converts it with numpy, as it did every reading before the plain
   number way existed). Same kind, same fields: the outcome must be identical, for
   every sensor, instantaneous ones included;
2. the equivalent one-value ``BeliefBatch``, wherever the two kinds share their
   rules (the sensor is not instantaneous and the resolution is positive: a batch
   refuses other resolutions itself and spaces instantaneous values freely). Field
   names are mapped (``start`` is ``event_start``, ``resolution_ms`` is
   ``event_resolution_ms``, ``values``/``values[0]`` is ``event_value``), and a batch
   numbers its items where a single reading has none.

Identical means the same rejections (error, reason, field, item) and the same
columns, values and dtypes alike.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from schemas.beliefs import TIME_MAX, TIME_MIN, BeliefColumns, Rejection, Sensor, validate

NOW = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
TIMEZONES = ("UTC", "Europe/Amsterdam")
RESOLUTIONS_MS = (0, 900_000, 3_600_000, 86_400_000)

SENSORS = {
    f"{res}-{tz}-{grid}": Sensor(
        name=f"{res}-{tz}-{grid}",
        unit="kW",
        event_resolution=timedelta(milliseconds=res),
        timezone=tz,
        off_grid=grid,
    )
    for res in RESOLUTIONS_MS
    for tz in TIMEZONES
    for grid in ("reject", "floor")
}


def last_sunday(year: int, month: int) -> date:
    end = date(year, month, 31)
    return end - timedelta(days=(end.weekday() + 1) % 7)


#: Days of 23 and 25 hours in Amsterdam (since 1981, DST ends on October's last Sunday).
dst_days = st.builds(last_sunday, st.integers(1981, 2299), st.sampled_from([3, 10]))


def on_grid(tz: str) -> st.SearchStrategy[datetime]:
    """Whole quarter hours of days in ``tz`` (at quarter 0: on every grid in ``tz``)."""
    return st.builds(
        lambda day, quarter: (
            datetime.combine(day, time(), ZoneInfo(tz)).astimezone(UTC)
            + quarter * timedelta(minutes=15)
        ),
        st.one_of(st.dates(date(1899, 12, 30), date(2300, 1, 2)), dst_days),
        st.one_of(st.just(0), st.integers(0, 95)),
    )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Any microsecond from just before the history's range to just after it.
anywhere = st.integers(
    (datetime(1899, 12, 30, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1),
    (datetime(2300, 1, 2, tzinfo=UTC) - EPOCH) // timedelta(microseconds=1),
).map(lambda x: EPOCH + timedelta(microseconds=x))
near_now = st.integers(-3 * 86_400, 3 * 86_400).map(lambda s: NOW + timedelta(seconds=s))
edges = st.sampled_from([TIME_MIN, TIME_MAX, TIME_MAX - timedelta(minutes=15), NOW])
instants = st.one_of(on_grid("UTC"), anywhere, near_now, edges)

values = st.one_of(
    st.floats(width=64),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324]),
)
horizons_ms = st.one_of(
    st.none(),
    st.integers(-2 * 86_400_000, 2 * 86_400_000),
    st.sampled_from([0, 100 * 366 * 86_400_000, 100 * 366 * 86_400_000 + 1, -(2**62)]),
)


#: True nine times in ten.
mostly = st.integers(0, 9).map(lambda i: i > 0)


@st.composite
def single_beliefs(draw: st.DrawFn) -> dict:
    """A decoded ``Belief`` record, good or bad in any of the ways a producer can err."""
    sensor = draw(st.sampled_from(sorted(SENSORS.values(), key=lambda s: s.name)))
    own_ms = sensor.event_resolution // timedelta(milliseconds=1)
    # Mostly the good value of each field, so that later checks get their turn too.
    res_ms = own_ms if draw(mostly) else draw(st.sampled_from((-1, *RESOLUTIONS_MS)))
    with_time = draw(st.booleans())
    return {
        "sensor": sensor.name,
        "event_start": draw(st.one_of(on_grid(sensor.timezone), instants)),
        "event_resolution_ms": res_ms,
        "belief_time": draw(instants) if with_time else None,
        "belief_horizon_ms": None if with_time else draw(horizons_ms),
        "source": "meter" if draw(mostly) else draw(st.sampled_from(("", " "))),
        "cumulative_probability": draw(
            st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0.0, 1.0))
            if draw(mostly)
            else st.one_of(st.floats(-0.5, 1.5), st.just(math.nan))
        ),
        "event_value": draw(values),
        "unit": draw(st.sampled_from([None, "kW", "MW", "W"])),
    }


def as_batch(rec: dict) -> dict:
    """The one-value ``BeliefBatch`` that says what ``rec`` says."""
    out = {k: v for k, v in rec.items() if not k.startswith("event_")}
    out.update(
        start=rec["event_start"],
        resolution_ms=rec["event_resolution_ms"],
        values=[rec["event_value"]],
    )
    return out


BATCH_FIELDS = {
    "start": "event_start",
    "resolution_ms": "event_resolution_ms",
    "values": "event_value",
    "values[0]": "event_value",
}


def as_single(rej: Rejection) -> Rejection:
    """A batch's rejection named as the single reading's would be."""
    field = BATCH_FIELDS.get(rej.field, rej.field) if rej.field else rej.field
    return Rejection(rej.error, rej.reason, field, None)


def assert_same_columns(got: BeliefColumns, want: BeliefColumns) -> None:
    assert (got.sensor, got.source, got.counts) == (want.sensor, want.source, want.counts)
    for name in (
        "event_start_us",
        "event_resolution_s",
        "belief_time_us",
        "cumulative_probability",
        "event_value",
    ):
        g, w = getattr(got, name), getattr(want, name)
        assert [a.dtype for a in g] == [b.dtype for b in w], name
        assert [a.tolist() for a in g] == [b.tolist() for b in w], name


@settings(max_examples=examples(600))
@given(single_beliefs())
def test_a_single_belief_is_validated_as_the_same_reading_in_arrays(rec):
    cols, rej = validate("Belief", rec, SENSORS, NOW)

    as_array = dict(rec, event_value=np.float64(rec["event_value"]))
    ref_cols, ref_rej = validate("Belief", as_array, SENSORS, NOW)
    assert rej == ref_rej
    assert_same_columns(cols, ref_cols)

    sensor = SENSORS[rec["sensor"]]
    if sensor.event_resolution and rec["event_resolution_ms"] > 0:
        batch_cols, batch_rej = validate("BeliefBatch", as_batch(rec), SENSORS, NOW)
        assert rej == [as_single(r) for r in batch_rej]
        assert_same_columns(cols, batch_cols)
