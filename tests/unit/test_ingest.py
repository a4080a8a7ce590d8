"""Ingestion step: bytes in, belief columns and dead letters (with their coordinates) out."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from schemas import serde
from schemas.beliefs import Limits, Sensor
from streams.ingest import RawMessage, ingest

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
        msg(batch_bytes(sensor="ghost"), offset=1),
        msg(b"\x00", offset=2),
        msg(batch_bytes(sensor="pv", values=[5.0, 6.0], source="inverter", unit="MW"), offset=3),
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
