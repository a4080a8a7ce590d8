"""Ingestion step: bytes in, belief columns and dead letters (with their coordinates) out."""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from schemas import serde
from schemas.beliefs import Limits, Sensor
from streams.ingest.step import Outcome, RawMessage, ingest

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 2, 1, tzinfo=UTC)
SENSORS = {"meter": Sensor(name="meter", unit="kW"), "pv": Sensor(name="pv", unit="kW")}


def batch_bytes(sensor="meter", values=(1.0, 2.0), source="m", **kw) -> bytes:
    rec = {
        "sensor": sensor,
        "start": T0,
        "resolution_ms": 900_000,
        "values": list(values),
        "belief_time": None,
        "belief_horizon_ms": None,
        "source": source,
        "cumulative_probability": 0.5,
        "unit": None,
    }
    rec.update(kw)
    return serde.encode("BeliefBatch", rec)


def msg(value, offset=0, partition=0, key=b"meter") -> RawMessage:
    return RawMessage("flexstream.readings.meter", partition, offset, key, value)


def test_where_formats_topic_partition_offset():
    assert msg(b"", offset=42, partition=2).where == "flexstream.readings.meter[2]@42"


def test_bad_bytes_become_a_dead_letter_with_coordinates_and_original_bytes():
    raw = b"\x07not avro"
    res = ingest([msg(raw, offset=17, partition=1)], SENSORS, NOW)
    assert len(res.beliefs) == 0 and res.sources == set()
    [d] = res.dead_letters
    assert (d["error"], d["field"], d["item"]) == ("bad-bytes", "value", None)
    assert (d["topic"], d["partition"], d["offset"]) == ("flexstream.readings.meter", 1, 17)
    assert (d["key"], d["value"]) == (b"meter", raw)
    assert d["rejected_at"] == NOW
    assert "magic byte" in d["reason"]


def test_tombstone_becomes_a_dead_letter():
    [d] = ingest([msg(None, offset=3)], SENSORS, NOW).dead_letters
    assert (d["error"], d["field"], d["offset"], d["value"]) == ("bad-bytes", "value", 3, None)
    assert "tombstone" in d["reason"]


def test_dead_letters_encode_with_the_dead_letter_schema():
    [d] = ingest([msg(b"\x00\x00\x00\x00\x09xx", offset=5)], SENSORS, NOW).dead_letters
    kind, back = serde.decode(serde.encode("DeadLetter", d))
    assert kind == "DeadLetter"
    assert back == d


def test_mixed_batch_keeps_valid_values_and_dead_letters_the_rest():
    raw = batch_bytes(values=[1.0, math.nan, 3.0])
    res = ingest([msg(raw, offset=9)], SENSORS, NOW)
    assert res.beliefs.event_value[0].tolist() == [1.0, 3.0]
    [d] = res.dead_letters
    assert (d["error"], d["field"], d["item"], d["offset"]) == ("not-finite", "values[1]", 1, 9)
    assert d["value"] == raw


def test_several_messages_collect_sources_and_keep_order():
    messages = [
        msg(batch_bytes(values=[1.0], source="meter-a"), offset=0),
        msg(batch_bytes(sensor="ghost"), offset=1, key=b"ghost"),
        msg(b"\x00", offset=2),
        msg(
            batch_bytes(sensor="pv", values=[5.0, 6.0], source="inverter", unit="MW"),
            offset=3,
            key=b"pv",
        ),
        msg(batch_bytes(values=[math.inf], source="never-kept"), offset=4),
    ]
    res = ingest(messages, SENSORS, NOW)
    assert len(res.beliefs) == 3
    assert res.beliefs.sensor == ["meter", "pv"]
    assert res.beliefs.counts == [1, 2]
    assert res.beliefs.event_value[1].tolist() == [5000.0, 6000.0]
    assert res.sources == {"meter-a", "inverter"}
    assert [(d["offset"], d["error"]) for d in res.dead_letters] == [
        (1, "unknown-sensor"),
        (2, "bad-bytes"),
        (4, "not-finite"),
    ]


def test_limits_are_passed_through():
    res = ingest([msg(batch_bytes(values=[1, 2, 3]))], SENSORS, NOW, Limits(max_batch_values=2))
    assert [d["error"] for d in res.dead_letters] == ["oversized-batch"]
    future = NOW - timedelta(days=40)
    res = ingest([msg(batch_bytes())], SENSORS, future)
    assert [d["error"] for d in res.dead_letters] == ["belief-in-future"]


def test_hostile_but_well_framed_records_never_raise():
    messages = [
        msg(batch_bytes(unit="("), offset=0),
        msg(batch_bytes(unit="1/0"), offset=1),
        msg(batch_bytes(belief_horizon_ms=2**62), offset=2),
        msg(batch_bytes(values=[1e308], unit="MW"), offset=3),
        msg(
            serde.encode(
                "DeadLetter",
                {
                    "reason": "r",
                    "error": "e",
                    "topic": "t",
                    "partition": 0,
                    "offset": 0,
                    "rejected_at": NOW,
                },
            ),
            offset=4,
        ),
    ]
    res = ingest(messages, SENSORS, NOW)
    assert len(res.beliefs) == 0
    assert [(d["offset"], d["error"]) for d in res.dead_letters] == [
        (0, "incompatible-unit"),
        (1, "incompatible-unit"),
        (2, "bad-horizon"),
        (3, "not-finite"),
        (4, "bad-schema"),
    ]


AMS_HOURLY = {
    "price": Sensor(
        name="price", unit="EUR/MWh", event_resolution="PT1H", timezone="Europe/Amsterdam"
    ),
    **SENSORS,
}


def test_a_key_other_than_the_sensor_is_rejected_and_no_key_is_fine():
    res = ingest(
        [msg(batch_bytes(), key=b"pv"), msg(batch_bytes(), offset=1, key=None)], SENSORS, NOW
    )
    [d] = res.dead_letters
    assert (d["error"], d["field"], d["offset"]) == ("key-mismatch", "key", 0)
    assert len(res.beliefs) == 2
    assert res.outcomes == [Outcome(0, 1), Outcome(2, 0)]


def test_year_9999_and_year_1_batches_are_dead_letters_not_exceptions():
    late = batch_bytes(
        "price", [1.0] * 48, start=datetime(9999, 12, 30, 23, tzinfo=UTC), resolution_ms=3_600_000
    )
    early = batch_bytes(
        "price", [1.0], start=datetime(1, 1, 1, tzinfo=UTC), resolution_ms=3_600_000
    )
    res = ingest([msg(late, key=b"price"), msg(early, offset=1, key=b"price")], AMS_HOURLY, NOW)
    assert [(d["error"], d["field"]) for d in res.dead_letters] == [
        ("out-of-range", "start"),
        ("out-of-range", "start"),
    ]
    assert len(res.beliefs) == 0


def test_series_running_past_the_range_is_rejected():
    rec = batch_bytes(
        values=[1.0] * 10, start=datetime(2299, 12, 25, tzinfo=UTC), resolution_ms=3_600_000 * 24
    )
    daily = {"meter": Sensor(name="meter", unit="kW", event_resolution="P1D")}
    [d] = ingest([msg(rec)], daily, NOW).dead_letters
    assert d["error"] == "out-of-range"


def test_an_unexpected_exception_dead_letters_only_its_message(monkeypatch):
    import streams.ingest.step as ingest_mod

    real = ingest_mod.validate

    def flaky(kind, record, *a, **kw):
        if record["source"] == "boom":
            raise ZeroDivisionError("a defect")
        return real(kind, record, *a, **kw)

    monkeypatch.setattr(ingest_mod, "validate", flaky)
    res = ingest([msg(batch_bytes(source="boom")), msg(batch_bytes(), offset=1)], SENSORS, NOW)
    [d] = res.dead_letters
    assert (d["error"], d["offset"]) == ("internal-error", 0)
    assert "ZeroDivisionError: a defect" in d["reason"]
    assert len(res.beliefs) == 2


def test_dead_letters_are_bounded_and_carry_size_and_digest():
    raw = batch_bytes(
        values=[float("nan")] * 3 + [1.0] * 70_000, start=datetime(2020, 1, 1, tzinfo=UTC)
    )
    res = ingest([msg(raw)], SENSORS, NOW, Limits(max_batch_values=100_000))
    first, *rest = res.dead_letters
    assert len(rest) == 2 and len(res.beliefs) == 70_000
    assert len(raw) > Limits.max_dead_letter_bytes
    assert first["value"] == raw[: Limits.max_dead_letter_bytes] and first["value_truncated"]
    assert first["value_size"] == len(raw)
    assert first["value_sha256"] == hashlib.sha256(raw).hexdigest()
    assert all(d["value"] is None and d["value_sha256"] == first["value_sha256"] for d in rest)
    assert all(len(serde.encode("DeadLetter", d)) < 300_000 for d in res.dead_letters)


def test_small_dead_letters_keep_the_whole_original():
    [d] = ingest([msg(b"\x07x")], SENSORS, NOW).dead_letters
    assert (d["value"], d["value_truncated"], d["value_size"]) == (b"\x07x", False, 2)


# Property: every message is accounted for (stored or dead-lettered), ingest never raises.

UNITS = ["kW", "MW", "W", "kWh", "MWh", "Wh", "EUR/MWh", "EUR/kWh", "kg/MWh", "%", "furlong", ""]
_times = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.just(UTC),
)
_floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
_records = st.fixed_dictionaries(
    {
        "sensor": st.sampled_from(["meter", "pv", "price", "soc", "ghost", ""]),
        "start": _times,
        "resolution_ms": st.sampled_from([-1, 0, 1, 1000, 900_000, 3_600_000, 86_400_000, 2**62]),
        "values": st.lists(_floats, max_size=40),
        "belief_time": st.none() | _times,
        "belief_horizon_ms": st.none() | st.integers(-(2**62), 2**62),
        "source": st.sampled_from(["", " ", "m", "x" * 300]),
        "cumulative_probability": st.sampled_from([0.0, 0.5, 1.0, -1.0, float("nan")]),
        "unit": st.none() | st.sampled_from(UNITS),
    }
)
_single = st.fixed_dictionaries(
    {
        "sensor": st.sampled_from(["meter", "pv", "price", "soc", "ghost"]),
        "event_start": _times,
        "event_resolution_ms": st.sampled_from([-1, 0, 900_000, 3_600_000, 2**62]),
        "event_value": _floats,
        "belief_time": st.none() | _times,
        "belief_horizon_ms": st.none() | st.integers(-(2**62), 2**62),
        "source": st.sampled_from(["", "m"]),
        "cumulative_probability": st.sampled_from([0.5, 2.0]),
        "unit": st.none() | st.sampled_from(UNITS),
    }
)
ALL = {
    **AMS_HOURLY,
    "soc": Sensor(name="soc", unit="kWh", event_resolution="PT0M"),
}


def _raw(draw_kind, rec):
    if draw_kind == "bytes":
        return rec
    try:
        return serde.encode("Belief" if "event_value" in rec else "BeliefBatch", rec)
    except Exception:  # noqa: BLE001 - some drawn records are not encodable at all
        return b"\x00\x00\x00\x00\x03" + repr(rec).encode()[:50]


@settings(max_examples=examples(300))
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("bytes"), st.binary(max_size=64)),
            st.tuples(st.just("record"), _records),
            st.tuples(st.just("record"), _single),
        ),
        max_size=8,
    ),
    st.booleans(),
)
def test_every_message_is_stored_or_dead_lettered_never_raised(items, keyed):
    messages = []
    for i, (kind, rec) in enumerate(items):
        value = _raw(kind, rec)
        key = rec["sensor"].encode() if keyed and kind == "record" else None
        messages.append(msg(value, offset=i, key=key))
    res = ingest(messages, ALL, NOW)
    assert len(res.outcomes) == len(messages)
    assert sum(o.stored for o in res.outcomes) == len(res.beliefs)
    assert sum(o.rejected for o in res.outcomes) == len(res.dead_letters)
    for m, o in zip(messages, res.outcomes, strict=True):
        assert o.stored + o.rejected > 0, m.where
        if o.stored:
            assert all(np.isfinite(v).all() for v in res.beliefs.event_value)
    for d in res.dead_letters:
        serde.encode("DeadLetter", d)  # always encodable
        # Extreme but well-formed input is named by its field, not left to the safety net.
        assert d["error"] != "internal-error", d["reason"]


def test_a_million_values_in_one_message_are_rejected_cheaply():
    raw = batch_bytes(values=np.arange(1_000_000, dtype=float).tolist())
    [d] = ingest([msg(raw)], SENSORS, NOW).dead_letters
    assert d["error"] == "oversized-batch" and d["value_truncated"]
