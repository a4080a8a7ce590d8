"""The rolling belief state on a plain dict (the worker uses a faust table)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas import serde
from schemas.beliefs import Sensor, validate
from streams.belief_state import BeliefState, to_us

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
SENSORS = {
    "price": Sensor(name="price", unit="EUR/MWh", event_resolution="PT1H"),
    "soc": Sensor(name="soc", unit="kWh", event_resolution="PT0M"),
}


def cols(sensor, start, values, belief_time, source="a", res_ms=3_600_000, now=NOW):
    rec = {
        "sensor": sensor,
        "start": start,
        "resolution_ms": res_ms,
        "values": values,
        "belief_time": belief_time,
        "source": source,
    }
    kind, dec = serde.decode(serde.encode("BeliefBatch", rec))
    out, rejected = validate(kind, dec, SENSORS, now)
    assert rejected == []
    return out


def state() -> BeliefState:
    return BeliefState({}, lambda: NOW, past=timedelta(days=2), future=timedelta(days=2))


def test_a_newer_belief_replaces_an_older_one_whatever_the_arrival_order():
    st = state()
    t = NOW.replace(hour=0)
    st.update(cols("price", t, [10.0, 20.0], belief_time=NOW - timedelta(hours=2)))
    st.update(cols("price", t, [11.0], belief_time=NOW - timedelta(hours=1)))
    # A late arrival of an even older belief changes nothing.
    changed = st.update(cols("price", t, [99.0, 99.0], belief_time=NOW - timedelta(hours=3)))
    assert changed == {}
    s = st.series("price", t, t + timedelta(hours=2))
    assert s.tolist() == [11.0, 20.0]
    assert list(s.index) == [t, t + timedelta(hours=1)]
    assert s.attrs["resolution"] == timedelta(hours=1)


def test_without_a_source_the_most_recent_belief_of_any_source_counts():
    st = state()
    t = NOW.replace(hour=0)
    st.update(cols("price", t, [10.0], belief_time=NOW - timedelta(hours=2), source="a"))
    st.update(cols("price", t, [30.0], belief_time=NOW - timedelta(hours=1), source="b"))
    assert st.series("price", t, t + timedelta(hours=1)).tolist() == [30.0]
    assert st.series("price", t, t + timedelta(hours=1), source="a").tolist() == [10.0]


def test_events_outside_the_rolling_window_are_not_kept_and_old_buckets_expire():
    st = state()
    old = NOW - timedelta(days=5)
    assert st.update(cols("price", old, [1.0], belief_time=old)) == {}
    assert st.table == {}
    recent = NOW - timedelta(days=1)
    st.update(cols("price", recent, [2.0], belief_time=recent))
    assert len(st.table) == 1
    later = NOW + timedelta(days=4)
    st.clock = lambda: later
    st.update(cols("price", later, [3.0], belief_time=later, now=later))
    assert len(st.table) == 1
    assert all(int(k.rsplit("|", 1)[1]) >= to_us(NOW) // (86_400 * 10**6) for k in st.table)


def test_changed_spans_cover_the_events_updated():
    st = state()
    t = NOW.replace(hour=0)
    changed = st.update(cols("price", t, [1.0, 2.0, 3.0], belief_time=NOW))
    assert changed == {"price": (to_us(t), to_us(t + timedelta(hours=3)))}


def test_latest_at_for_an_instantaneous_sensor():
    st = state()
    t = NOW - timedelta(hours=3)
    st.update(cols("soc", t, [4.0, 5.0, 6.0], belief_time=NOW, res_ms=900_000))
    assert st.latest_at("soc", NOW) == (t + timedelta(minutes=30), 6.0)
    assert st.latest_at("soc", t + timedelta(minutes=20)) == (t + timedelta(minutes=15), 5.0)
    assert st.latest_at("soc", t - timedelta(minutes=1)) is None


def test_series_spans_day_buckets():
    st = state()
    t = NOW.replace(hour=20)
    st.update(cols("price", t, list(np.arange(10.0)), belief_time=NOW))
    s = st.series("price", t + timedelta(hours=2), t + timedelta(hours=8))
    assert s.tolist() == pytest.approx([2, 3, 4, 5, 6, 7])
