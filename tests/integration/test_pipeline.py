"""Readings topic -> worker -> ClickHouse, against the real broker and the embedded engine."""

from __future__ import annotations

import hashlib
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest

from schemas import serde
from tests.integration.conftest import batch, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=UTC)
COUNT = "SELECT count() FROM flexstream.beliefs FINAL"
FUTURE = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2)


def test_published_batch_lands_as_exact_rows(fs):
    fs.start_worker()
    fs.publish("readings.meter", [("pv", batch("pv", T0, [-1.5, -2.25, -3.0], source="inverter"))])
    fs.publish(
        "readings.price",
        [
            (
                "price",
                batch(
                    "price",
                    T0,
                    [80.5, -3.25],
                    res_ms=3_600_000,
                    belief_time=T0 - timedelta(hours=13),
                    source="epex",
                ),
            )
        ],
    )
    wait_for(lambda: fs.sql(COUNT)[0][0] == 5, what="5 beliefs")
    rows = fs.sql(
        "SELECT sensor, toString(event_start), event_resolution, toString(belief_time), source, "
        "cumulative_probability, event_value FROM flexstream.beliefs FINAL "
        "ORDER BY sensor, event_start"
    )
    assert rows == [
        [
            "price",
            "2026-06-01 00:00:00.000000",
            3600,
            "2026-05-31 11:00:00.000000",
            "epex",
            0.5,
            80.5,
        ],
        [
            "price",
            "2026-06-01 01:00:00.000000",
            3600,
            "2026-05-31 11:00:00.000000",
            "epex",
            0.5,
            -3.25,
        ],
        [
            "pv",
            "2026-06-01 00:00:00.000000",
            900,
            "2026-06-01 00:15:00.000000",
            "inverter",
            0.5,
            -1.5,
        ],
        [
            "pv",
            "2026-06-01 00:15:00.000000",
            900,
            "2026-06-01 00:30:00.000000",
            "inverter",
            0.5,
            -2.25,
        ],
        [
            "pv",
            "2026-06-01 00:30:00.000000",
            900,
            "2026-06-01 00:45:00.000000",
            "inverter",
            0.5,
            -3.0,
        ],
    ]
    assert fs.sql("SELECT name FROM flexstream.sources FINAL ORDER BY name") == [
        ["epex"],
        ["inverter"],
    ]


def test_malformed_messages_go_to_dead_letters_and_valid_ones_land(fs):
    fs.extra_env["FLEXSTREAM_WORKER_MAX_BATCH_VALUES"] = "100"
    fs.start_worker()
    messages = [
        ("pv", b"not avro at all"),  # bad bytes
        ("ghost", batch("ghost", T0, [1.0])),  # unknown sensor
        ("pv", batch("pv", T0, [1.0, float("nan"), 3.0, float("inf")])),  # two bad values
        ("load", batch("load", T0, [2.0], unit="MW")),  # converted to kW
        ("load", batch("load", T0 + timedelta(hours=1), [2.0], unit="EUR")),  # incompatible
        ("pv", batch("pv", T0 + timedelta(minutes=7), [1.0])),  # off the 15-minute grid
        ("soc", serde.encode("Belief", {"sensor": "soc", "event_start": T0, "event_value": 4.5})),
        ("pv", batch("pv", T0, [1.0] * 101)),  # more values than the worker accepts
        ("pv", batch("pv", T0, [1.0], res_ms=300_000)),  # PT5M for a PT15M sensor
        ("pv", batch("pv", FUTURE, [1.0])),  # believed in the future
    ]
    fs.publish("readings.meter", messages)
    dead = fs.consume_all("dead-letters", expect=9)
    letters = [serde.decode(m.value())[1] for m in dead]
    # Each letter names its message by digest; the first letter of a message carries its bytes.
    index = {hashlib.sha256(value).hexdigest(): i for i, (_, value) in enumerate(messages)}
    assert sorted(
        (index[d["value_sha256"]], d["error"], d["field"], d["item"]) for d in letters
    ) == [
        (0, "bad-bytes", "value", None),
        (1, "unknown-sensor", "sensor", None),
        (2, "not-finite", "values[1]", 1),
        (2, "not-finite", "values[3]", 3),
        (4, "incompatible-unit", "unit", None),
        (5, "off-grid", "start", None),
        (7, "oversized-batch", "values", None),
        (8, "resolution-mismatch", "resolution_ms", None),
        (9, "belief-in-future", "belief_horizon_ms", None),
    ]
    # Each letter points back at its source message.
    by_coords = {(m.partition(), m.offset()): m for m in dead}
    assert len(by_coords) <= len(dead)
    assert all(d["topic"] == fs.topic("readings.meter") for d in letters)
    assert all(d["partition"] in (0, 1, 2) and d["offset"] >= 0 for d in letters)
    assert "not registered" in next(d["reason"] for d in letters if d["error"] == "unknown-sensor")
    wait_for(lambda: fs.sql(COUNT)[0][0] == 4, what="4 valid beliefs")
    assert fs.sql(
        "SELECT sensor, event_value FROM flexstream.beliefs FINAL ORDER BY sensor, event_start"
    ) == [["load", 2000.0], ["pv", 1.0], ["pv", 3.0], ["soc", 4.5]]
    # The worker survived: a later valid message still lands.
    fs.publish("readings.meter", [("pv", batch("pv", T0 + timedelta(days=1), [7.0]))])
    wait_for(lambda: fs.sql(COUNT)[0][0] == 5, what="the later belief")


def _expected(n_msgs: int) -> tuple[list, float]:
    msgs, total = [], 0.0
    for i in range(n_msgs):
        values = [round(i + j / 100, 2) for j in range(96)]
        total += sum(values)
        start = T0 - timedelta(days=n_msgs - i)
        msgs.append(("load", batch("load", start, values, source="meter")))
    return msgs, total


def test_worker_killed_mid_stream_loses_and_duplicates_nothing(fs):
    fs.extra_env["FLEXSTREAM_WORKER_BATCH_MAX"] = "4"
    n_msgs = 400
    msgs, total = _expected(n_msgs)
    first = fs.start_worker()
    fs.publish("readings.meter", msgs)
    landed = wait_for(
        lambda: (c := fs.sql(COUNT)[0][0]) > 0 and c, every=0.05, what="the first beliefs"
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert landed < n_msgs * 96, "the worker finished before it could be killed mid-stream"
    fs.start_worker()
    wait_for(lambda: fs.sql(COUNT)[0][0] >= n_msgs * 96, timeout=120, what="all beliefs")
    count, value_sum, keys = fs.sql(
        "SELECT count(), round(sum(event_value), 4), uniqExact(sensor, event_start, source, "
        "belief_time) FROM flexstream.beliefs FINAL"
    )[0]
    assert (count, keys) == (n_msgs * 96, n_msgs * 96)
    assert value_sum == round(total, 4)
    # Replays after the kill may have written some rows twice; the table key absorbs them.
    raw = fs.sql("SELECT count() FROM flexstream.beliefs")[0][0]
    assert raw >= n_msgs * 96
