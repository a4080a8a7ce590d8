"""Avro serde with Confluent framing: round trips, header bytes, schema evolution, bad bytes."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from importlib import resources

import fastavro
import pytest

from schemas import serde
from schemas.errors import InputError

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

BELIEF = {
    "sensor": "meter-1",
    "event_start": T0,
    "event_resolution_ms": 900_000,
    "belief_time": datetime(2026, 3, 1, 12, 15, 0, 123456, tzinfo=UTC),
    "belief_horizon_ms": None,
    "source": "meter",
    "cumulative_probability": 0.5,
    "event_value": -3.25,
    "unit": "MW",
}
BATCH = {
    "sensor": "price-da",
    "start": T0,
    "resolution_ms": 3_600_000,
    "values": [1.5, -2.0, 1e300, 0.0],
    "belief_time": None,
    "belief_horizon_ms": 86_400_000,
    "source": "epex",
    "cumulative_probability": 0.9,
    "unit": "EUR/MWh",
}
DEAD = {
    "reason": "sensor 'x' is not registered",
    "field": "sensor",
    "error": "unknown-sensor",
    "topic": "flexstream.readings.meter",
    "partition": 2,
    "offset": 2**40,
    "item": None,
    "key": b"x",
    "value": b"\x00\x00\x00\x00\x03garbage",
    "rejected_at": T0,
    "key_size": 1,
    "value_size": 12,
    "value_sha256": "ab" * 32,
    "value_truncated": False,
}


def _raw_schema(file: str) -> dict:
    return json.loads(resources.files("schemas").joinpath(file).read_text())


def _confluent_bytes(schema_id: int, file: str, record: dict) -> bytes:
    """What confluent-kafka's AvroSerializer writes: ``>bI`` header then schemaless Avro."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(_raw_schema(file)), record)
    return struct.pack(">bI", 0, schema_id) + buf.getvalue()


@pytest.mark.parametrize(
    ("name", "record", "sid", "file"),
    [
        ("Belief", BELIEF, 1, "belief.avsc"),
        ("BeliefBatch", BATCH, 3, "belief_batch.avsc"),
        ("DeadLetter", DEAD, 10, "dead_letter.avsc"),
    ],
)
def test_round_trip_and_header_match_confluent_framing(name, record, sid, file):
    data = serde.encode(name, record)
    assert data[:5] == bytes([0, 0, 0, 0, sid])
    assert data == _confluent_bytes(sid, file, record)
    assert serde.schema_id_of(data) == sid
    kind, back = serde.decode(data)
    assert kind == name
    assert back == record


def test_header_is_big_endian_for_large_ids():
    assert serde._HEADER.pack(serde.MAGIC, 0x01020304) == b"\x00\x01\x02\x03\x04"


def test_current_picks_newest_version_by_short_or_full_name():
    assert serde.current("BeliefBatch").id == 3
    assert serde.current("io.flexstream.BeliefBatch").id == 3
    with pytest.raises(KeyError):
        serde.current("Nope")


def test_v1_dead_letter_is_read_by_current_reader_with_sizes_unknown():
    v1 = {k: DEAD[k] for k in list(DEAD)[:10]}
    data = serde.encode("DeadLetter", v1, schema_id=4)
    assert data == _confluent_bytes(4, "dead_letter.v1.avsc", v1)
    kind, back = serde.decode(data)
    assert kind == "DeadLetter"
    assert back == {
        **v1,
        "key_size": None,
        "value_size": None,
        "value_sha256": None,
        "value_truncated": False,
    }


def test_v1_batch_is_read_by_current_reader_with_unit_none():
    v1 = {k: v for k, v in BATCH.items() if k != "unit"}
    data = serde.encode("BeliefBatch", v1, schema_id=2)
    assert data[:5] == b"\x00\x00\x00\x00\x02"
    assert data == _confluent_bytes(2, "belief_batch.v1.avsc", v1)
    kind, rec = serde.decode(data)
    assert kind == "BeliefBatch"
    assert rec["unit"] is None
    assert rec["values"] == BATCH["values"]
    assert rec["belief_horizon_ms"] == 86_400_000
    assert set(rec) == set(BATCH)


def _raises_serde(data) -> serde.SerdeError:
    with pytest.raises(serde.SerdeError) as info:
        serde.decode(data)
    err = info.value
    assert isinstance(err, InputError) and isinstance(err, ValueError)
    assert err.field == "value"
    assert str(err).startswith("value: ")
    return err


def test_unknown_schema_id_names_known_ids():
    data = struct.pack(">bI", 0, 99) + b"\x00"
    msg = str(_raises_serde(data))
    assert "unknown schema id 99" in msg
    assert str(sorted(serde.SCHEMA_IDS)) in msg and "1, 2, 3, 4" in msg
    assert "upgrade the reader" in msg


def test_wrong_magic_byte_says_how_to_frame():
    good = serde.encode("Belief", BELIEF)
    msg = str(_raises_serde(b"\x01" + good[1:]))
    assert "first byte is 1" in msg
    assert "magic byte" in msg


@pytest.mark.parametrize("data", [b"", b"\x00", b"\x00\x00\x00\x00", bytearray(b"\x00\x00")])
def test_shorter_than_header_is_rejected(data):
    msg = str(_raises_serde(data))
    assert "shorter than the 5-byte Confluent header" in msg


def test_non_bytes_is_rejected_like_a_short_message():
    msg = str(_raises_serde("not bytes"))
    assert "5-byte" in msg


@pytest.mark.parametrize("cut", [1, 2, 7, 20])
def test_truncated_payload_names_the_schema(cut):
    data = serde.encode("BeliefBatch", BATCH)
    msg = str(_raises_serde(data[:-cut]))
    assert "does not match schema io.flexstream.BeliefBatch (id 3)" in msg


def test_header_only_is_a_truncated_payload():
    msg = str(_raises_serde(b"\x00\x00\x00\x00\x01"))
    assert "(id 1)" in msg


def test_memoryview_input_decodes():
    data = serde.encode("Belief", BELIEF)
    assert serde.decode(memoryview(data)) == ("Belief", BELIEF)


@pytest.mark.parametrize(("name", "record"), [("Belief", BELIEF), ("BeliefBatch", BATCH)])
@pytest.mark.parametrize(("tail", "says"), [(b"\x00", "1 byte after"), (b"junk", "4 bytes after")])
def test_bytes_after_the_record_are_rejected(name, record, tail, says):
    data = serde.encode(name, record)
    msg = str(_raises_serde(data + tail))
    assert f"the message has {says} the io.flexstream.{name} record" in msg
    assert "one framed Avro record per message" in msg


def test_two_messages_glued_together_are_rejected():
    data = serde.encode("Belief", BELIEF)
    assert f"{len(data)} bytes after" in str(_raises_serde(data + data))


def test_bytes_after_the_record_are_counted_for_a_memoryview_too():
    data = serde.encode("Belief", BELIEF) + b"ab"
    assert "2 bytes after" in str(_raises_serde(memoryview(data)))
