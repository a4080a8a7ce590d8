"""The rolling belief state, on a plain dict as its persisted form (the worker: a faust table)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from schemas import serde
from schemas.beliefs import BeliefColumns, Sensor, validate
from schemas.times import to_us
from streams.beliefs.agent import changelog_pages
from streams.beliefs.block import (
    DAY_S,
    HOUR_S,
    MINUTE_S,
    Block,
    block_span_s,
    decode_key,
    encode_key,
    page_span_s,
)
from streams.beliefs.state import BeliefState

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
SENSORS = {
    "price": Sensor(name="price", unit="EUR/MWh", event_resolution="PT1H"),
    "soc": Sensor(name="soc", unit="kWh", event_resolution="PT0M"),
    "fast": Sensor(name="fast", unit="kW", event_resolution="PT1S"),
    "load": Sensor(name="load", unit="kW", event_resolution="PT15M"),
}


def cols(sensor, start, values, belief_time, source="a", res_ms=3_600_000, now=NOW, cp=0.5):
    rec = {
        "sensor": sensor,
        "start": start,
        "resolution_ms": res_ms,
        "values": values,
        "belief_time": belief_time,
        "source": source,
        "cumulative_probability": cp,
    }
    kind, dec = serde.decode(serde.encode("BeliefBatch", rec))
    out, rejected = validate(kind, dec, SENSORS, now)
    assert rejected == []
    return out


def state(table=None) -> BeliefState:
    return BeliefState(
        {} if table is None else table,
        lambda: NOW,
        past=timedelta(days=2),
        future=timedelta(days=2),
    )


def test_a_newer_belief_replaces_an_older_one_whatever_the_arrival_order():
    st_ = state()
    t = NOW.replace(hour=0)
    st_.update(cols("price", t, [10.0, 20.0], belief_time=NOW - timedelta(hours=2)))
    st_.update(cols("price", t, [11.0], belief_time=NOW - timedelta(hours=1)))
    # A late arrival of an even older belief changes nothing.
    changed = st_.update(cols("price", t, [99.0, 99.0], belief_time=NOW - timedelta(hours=3)))
    assert changed == {}
    s = st_.series("price", t, t + timedelta(hours=2))
    assert s.tolist() == [11.0, 20.0]
    assert list(s.index) == [t, t + timedelta(hours=1)]
    assert s.attrs["resolution"] == timedelta(hours=1)


def test_within_one_batch_the_newest_belief_wins_and_equal_belief_times_go_to_the_later():
    st_ = state()
    t = NOW.replace(hour=0)
    batch = BeliefColumns()
    for value, hours_ago in ((1.0, 1), (2.0, 3), (3.0, 1), (4.0, 2)):
        batch.extend(cols("price", t, [value], belief_time=NOW - timedelta(hours=hours_ago)))
    st_.update(batch)
    assert st_.series("price", t, t + timedelta(hours=1)).tolist() == [3.0]


def test_without_a_source_the_most_recent_belief_of_any_source_counts():
    st_ = state()
    t = NOW.replace(hour=0)
    st_.update(cols("price", t, [10.0], belief_time=NOW - timedelta(hours=2), source="a"))
    st_.update(cols("price", t, [30.0], belief_time=NOW - timedelta(hours=1), source="b"))
    assert st_.series("price", t, t + timedelta(hours=1)).tolist() == [30.0]
    assert st_.series("price", t, t + timedelta(hours=1), source="a").tolist() == [10.0]
    assert st_.series("price", t, t + timedelta(hours=1), source="b").tolist() == [30.0]
    assert st_.series("price", t, t + timedelta(hours=1), source="c").tolist() == []


def test_per_source_values_stay_apart_in_one_batch():
    st_ = state()
    t = NOW.replace(hour=0)
    batch = cols("price", t, [1.0, 2.0], belief_time=NOW - timedelta(hours=1), source="a")
    batch.extend(cols("price", t, [5.0], belief_time=NOW - timedelta(hours=2), source="b"))
    st_.update(batch)
    assert st_.series("price", t, t + timedelta(hours=2), source="a").tolist() == [1.0, 2.0]
    assert st_.series("price", t, t + timedelta(hours=2), source="b").tolist() == [5.0]
    assert st_.series("price", t, t + timedelta(hours=2)).tolist() == [1.0, 2.0]


def test_quantiles_are_not_kept():
    st_ = state()
    t = NOW.replace(hour=0)
    assert st_.update(cols("price", t, [1.0], belief_time=NOW, cp=0.9)) == {}
    assert st_.table == {}


def test_events_outside_the_rolling_window_are_not_kept_and_old_blocks_expire():
    st_ = state()
    old = NOW - timedelta(days=5)
    assert st_.update(cols("price", old, [1.0], belief_time=old)) == {}
    assert st_.table == {}
    recent = NOW - timedelta(days=1)
    st_.update(cols("price", recent, [2.0], belief_time=recent))
    assert len(st_.table) == 1
    later = NOW + timedelta(days=4)
    st_.clock = lambda: later
    st_.update(cols("price", later, [3.0], belief_time=later, now=later))
    assert len(st_.table) == 1
    [(key, _)] = st_.table.items()
    assert key[2] * 10**6 >= to_us(later - st_.past) - 86_400 * 10**6
    assert st_.series("price", recent, later + timedelta(hours=1)).tolist() == [3.0]


def test_changed_spans_cover_the_events_updated():
    st_ = state()
    t = NOW.replace(hour=0)
    changed = st_.update(cols("price", t, [1.0, 2.0, 3.0], belief_time=NOW))
    assert changed == {"price": (to_us(t), to_us(t + timedelta(hours=3)))}
    # Only the event that took the newer belief counts as changed.
    late = BeliefColumns()
    late.extend(cols("price", t, [9.0], belief_time=NOW - timedelta(hours=1)))
    late.extend(cols("price", t + timedelta(hours=2), [4.0], belief_time=NOW))
    changed = st_.update(late)
    assert changed == {"price": (to_us(t + timedelta(hours=2)), to_us(t + timedelta(hours=3)))}


def test_latest_at_for_an_instantaneous_sensor():
    st_ = state()
    t = NOW - timedelta(hours=3)
    st_.update(cols("soc", t, [4.0, 5.0, 6.0], belief_time=NOW, res_ms=900_000))
    assert st_.latest_at("soc", NOW) == (t + timedelta(minutes=30), 6.0)
    assert st_.latest_at("soc", t + timedelta(minutes=20)) == (t + timedelta(minutes=15), 5.0)
    assert st_.latest_at("soc", t - timedelta(minutes=1)) is None
    # Every event before the end counts for an instantaneous sensor.
    s = st_.series("soc", NOW, NOW + timedelta(hours=1))
    assert s.tolist() == [4.0, 5.0, 6.0]
    assert s.attrs["resolution"] == timedelta(0)


def test_series_spans_day_blocks_and_pages():
    st_ = state()
    t = NOW.replace(hour=20)
    st_.update(cols("price", t, list(np.arange(10.0)), belief_time=NOW))
    assert {k[2] % DAY_S for k in st_.table} == {0}
    s = st_.series("price", t + timedelta(hours=2), t + timedelta(hours=8))
    assert s.tolist() == pytest.approx([2, 3, 4, 5, 6, 7])
    # An event that began before the start but overlaps it is included.
    s = st_.series("price", t + timedelta(minutes=30), t + timedelta(hours=1))
    assert s.tolist() == [0.0]


def test_fine_resolutions_keep_hour_blocks_and_pages_stay_small():
    assert block_span_s(0) == HOUR_S and block_span_s(1) == HOUR_S
    assert block_span_s(900) == DAY_S
    assert page_span_s(0) == MINUTE_S and page_span_s(1) == MINUTE_S
    assert page_span_s(300) == HOUR_S and page_span_s(900) == DAY_S
    st_ = state()
    t = NOW - timedelta(hours=2)
    st_.update(cols("fast", t, list(np.arange(7200.0)), belief_time=NOW, res_ms=1000))
    assert len(st_.table) == 120  # a page per minute
    assert all(len(data) < 2_000 for data in st_.table.values())
    s = st_.series("fast", NOW - timedelta(seconds=3), NOW)
    assert s.tolist() == [7197.0, 7198.0, 7199.0]


def test_an_update_rewrites_only_the_pages_it_changed():
    table: dict = {}
    st_ = state(table)
    t = NOW.replace(hour=0) - timedelta(days=1)
    st_.update(cols("load", t, [1.0] * 192, belief_time=NOW - timedelta(hours=1), res_ms=900_000))
    assert len(table) == 2  # daily pages of 15-minute events
    written = []

    class Recording(dict):
        def __setitem__(self, key, value):
            written.append(key)
            super().__setitem__(key, value)

    st_.table = Recording(table)
    st_.update(cols("load", t + timedelta(hours=5), [2.0], belief_time=NOW, res_ms=900_000))
    assert written == [("load", "a", to_us(t) // 10**6)]
    # A late, older belief writes nothing.
    st_.update(cols("load", t, [3.0], belief_time=NOW - timedelta(hours=2), res_ms=900_000))
    assert len(written) == 1


def test_block_and_key_encodings_round_trip():
    b = Block.empty(900)
    assert (b.span_s, b.page_s) == (DAY_S, DAY_S)
    day = DAY_S * 10**6
    assert b.merge(np.array([5, 7, 9]), np.array([1, 1, 1]), np.array([0.5, 0.7, 1.0])) is None
    assert b.merge(np.array([day + 1]), np.array([2]), np.array([2.0])) is None
    assert b.merge(np.array([8]), np.array([3]), np.array([0.8])).tolist() == [True]  # uneven
    assert b.page_keys() == [0, DAY_S]
    assert len(b.encode(DAY_S)) < len(b.encode(0))  # one event: start and belief time once
    page = Block.decode(b.encode(0))
    assert (page.span_s, page.page_s, page.resolution_s) == (DAY_S, DAY_S, 900)
    assert page.starts.tolist() == [5, 7, 8, 9] and page.values.tolist() == [0.5, 0.7, 0.8, 1.0]
    assert page.belief_times.tolist() == [1, 1, 3, 1]
    page.values[0] = 1.0  # writable
    even = Block.empty(900)
    even.merge(np.arange(96) * 900 * 10**6, np.full(96, 4), np.arange(96.0))
    assert len(even.encode(0)) < 96 * 8 + 64
    back = Block.decode(even.encode(0))
    assert back.starts.tolist() == even.starts.tolist() and set(back.belief_times) == {4}
    joined = Block.join([Block.decode(b.encode(DAY_S)), Block.decode(b.encode(0))])
    assert joined.starts.tolist() == [5, 7, 8, 9, day + 1]
    assert decode_key(encode_key(("a|b", 'src,"1"', 86_400))) == ("a|b", 'src,"1"', 86_400)
    with pytest.raises(ValueError):
        Block.decode(b.encode(0)[:-1])


def test_a_new_instance_restores_the_same_series_from_the_persisted_form():
    st_ = state()
    t = NOW.replace(hour=0)
    st_.update(cols("price", t, [1.0, 2.0, 3.0], belief_time=NOW - timedelta(hours=2)))
    st_.update(cols("price", t, [9.0], belief_time=NOW - timedelta(hours=1), source="b"))
    st_.update(cols("soc", t, [4.0, 5.0], belief_time=NOW, res_ms=900_000))
    restored = state(dict(st_.table))
    assert restored.restore() == len(st_.table)
    for sensor in ("price", "soc"):
        for source in (None, "a", "b"):
            a = st_.series(sensor, t - timedelta(hours=1), t + timedelta(hours=4), source)
            b = restored.series(sensor, t - timedelta(hours=1), t + timedelta(hours=4), source)
            assert a.equals(b) and a.attrs == b.attrs
    # The restored state goes on ordering by belief time.
    restored.update(cols("price", t, [7.0], belief_time=NOW - timedelta(hours=3)))
    assert restored.series("price", t, t + timedelta(hours=1), "a").tolist() == [1.0]


def test_unreadable_blocks_are_skipped_on_restore():
    st_ = state({("price", "a", 0): b"\x09junk"})
    assert st_.restore() == 0


# Any sequence of updates: per (sensor, event, source) the belief with the latest belief
# time (the later arrival among equal ones), whether updates come one by one or batched.
_update = st.tuples(
    st.sampled_from(["price", "soc"]),
    st.sampled_from(["a", "b"]),
    st.integers(0, 40),  # first event, in hours after the window's start
    st.lists(st.integers(-100, 100), min_size=1, max_size=4),  # values
    st.integers(1, 6),  # belief time, hours before now
)


@settings(max_examples=examples(150))
@given(st.lists(_update, min_size=1, max_size=12), st.integers(1, 4))
def test_any_sequence_of_updates_keeps_the_latest_belief_per_event_and_source(updates, per_batch):
    base = NOW - timedelta(days=1, hours=6)
    sequential, batched = state(), state()
    expected: dict[tuple[str, str, int], tuple[int, float]] = {}
    pending = BeliefColumns()
    for i, (sensor, source, hour, values, bt_hours) in enumerate(updates):
        start = base + timedelta(hours=hour)
        bt = NOW - timedelta(hours=bt_hours)
        c = cols(sensor, start, [float(v) for v in values], belief_time=bt, source=source)
        sequential.update(c)
        pending.extend(c)
        if (i + 1) % per_batch == 0:
            batched.update(pending)
            pending = BeliefColumns()
        for j, v in enumerate(values):
            ev = to_us(start + timedelta(hours=j))
            held = expected.get((sensor, source, ev))
            if held is None or held[0] <= to_us(bt):
                expected[(sensor, source, ev)] = (to_us(bt), float(v))
    batched.update(pending)
    restored = state(dict(batched.table))
    restored.restore()
    lo, hi = base - timedelta(hours=1), base + timedelta(hours=48)
    for st_ in (sequential, batched, restored):
        for sensor in ("price", "soc"):
            for source in ("a", "b"):
                want = {
                    ev: v
                    for (s, src, ev), (_, v) in expected.items()
                    if (s, src) == (sensor, source)
                }
                got = st_.series(sensor, lo, hi, source)
                assert (
                    dict(zip(got.index.as_unit("us").asi8.tolist(), got.tolist(), strict=True))
                    == want
                )
            # Without a source: the newest belief across sources.
            newest: dict[int, tuple[int, float]] = {}
            for (s, _src, ev), (bt, v) in sorted(expected.items(), key=lambda kv: kv[0][1]):
                if s == sensor and (ev not in newest or newest[ev][0] <= bt):
                    newest[ev] = (bt, v)
            got = st_.series(sensor, lo, hi)
            assert dict(zip(got.index.as_unit("us").asi8.tolist(), got.tolist(), strict=True)) == {
                ev: v for ev, (_, v) in newest.items()
            }


class _FakeTable:
    """Stands in for the faust table: a producer that acknowledges, a store that applies."""

    changelog_topic_name = "w-belief-pages-changelog"

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[bytes, bytes | None, int]] = []
        self.applied: list[tuple[int, int, bytes, bytes | None]] = []
        self.app = self
        self.producer = self
        self.data: dict[bytes, bytes] = {}

    async def send(self, topic, key, value, partition, timestamp, headers):
        assert topic == self.changelog_topic_name
        fut = asyncio.get_running_loop().create_future()
        offset = len(self.sent)
        self.sent.append((key, value, partition))
        if self.fail:
            fut.set_exception(RuntimeError("not acknowledged"))
        else:
            topic = self.changelog_topic_name
            fut.set_result(SimpleNamespace(topic=topic, partition=partition, offset=offset))
        return fut

    def apply_changelog_batch(self, records):
        for r in records:
            assert r.message.tp.partition == r.partition
            self.applied.append((r.partition, r.offset, r.key, r.value))
            if r.value is None:
                self.data.pop(r.key, None)
            else:
                self.data[r.key] = r.value


def test_changelog_pages_go_to_the_sensors_partition_and_apply_in_order():
    async def run():
        table = _FakeTable()
        pages = changelog_pages(table, lambda sensor: {"price": 2}.get(sensor, 0))
        st_ = BeliefState(pages, lambda: NOW, past=timedelta(days=2), future=timedelta(days=2))
        t = NOW.replace(hour=0)
        st_.update(cols("price", t, [1.0, 2.0], belief_time=NOW - timedelta(hours=1)))
        assert await pages.flush() == 1
        st_.update(cols("price", t, [5.0], belief_time=NOW))
        st_.update(cols("soc", t, [4.0], belief_time=NOW, res_ms=900_000))
        assert await pages.flush() == 2
        await pages.settle()
        assert [p for _, _, p in table.sent] == [2, 2, 0]
        assert [o for _, o, _, _ in table.applied] == [0, 1, 2]
        restored = BeliefState(
            changelog_pages(table, lambda s: 0), lambda: NOW, past=timedelta(days=2)
        )
        assert restored.restore() == 2
        assert restored.series("price", t, t + timedelta(hours=2)).tolist() == [5.0, 2.0]

    asyncio.run(run())


def test_a_changelog_write_kafka_refuses_stops_the_next_flush():
    async def run():
        pages = changelog_pages(_FakeTable(fail=True), lambda sensor: 0)
        st_ = BeliefState(pages, lambda: NOW, past=timedelta(days=2), future=timedelta(days=2))
        st_.update(cols("price", NOW.replace(hour=0), [1.0], belief_time=NOW))
        await pages.flush()
        with pytest.raises(RuntimeError):
            await pages.settle()
        with pytest.raises(RuntimeError, match="not acknowledged"):
            await pages.flush()

    asyncio.run(run())


def test_copies_of_a_page_restore_to_the_newest_belief_per_event():
    older = Block.empty(900)
    older.merge(np.array([0, 900_000_000]), np.array([1, 1]), np.array([1.0, 2.0]))
    newer = Block.empty(900)
    newer.merge(np.array([0]), np.array([2]), np.array([5.0]))
    joined = Block.join([newer, older])
    assert joined.starts.tolist() == [0, 900_000_000]
    assert joined.values.tolist() == [5.0, 2.0]
