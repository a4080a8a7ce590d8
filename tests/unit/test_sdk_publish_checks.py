"""The SDK's publish pre-checks, default belief time and receipts, without Kafka."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples

from connectors.landing import DeadLetterInfo, Landing, tally
from connectors.reading_check import Outgoing, check_messages
from connectors.sdk import FlexStreamClient, NotLanded, Receipt, batch_records, belief_record
from connectors.sdk.receipts import KnownSensors, dead_letters_start, landed_or_raise, value_ranges
from schemas.beliefs import Sensor, publishing_belief_time
from schemas.errors import InputError

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2026, 3, 2, tzinfo=UTC)
Q = timedelta(minutes=15)
LOAD = Sensor(name="load", unit="kW", event_resolution="PT15M")
SOC = Sensor(name="soc", unit="kWh", event_resolution="PT0M")
SENSORS = {"load": LOAD, "soc": SOC}


def outgoing(sensor: str, n: int = 10, step: timedelta = Q, unit=None, max_values=4):
    recs = batch_records(sensor, T0, step, range(n), source="m", unit=unit, max_values=max_values)
    return [Outgoing("BeliefBatch", r, w) for r, w in zip(recs, value_ranges(recs), strict=True)]


def test_an_unknown_sensor_is_refused_naming_the_values_and_the_opt_out():
    with pytest.raises(InputError, match=r"'heat' \(values\[0:4\]\) is not registered") as exc:
        check_messages(outgoing("heat"), SENSORS)
    assert exc.value.field == "sensor"
    for advice in ("flexstream add sensor", "sensors_file=", "check=False"):
        assert advice in str(exc.value)


def test_units_are_refused_only_when_they_do_not_convert():
    check_messages(outgoing("load", unit="MW"), SENSORS)
    with pytest.raises(InputError, match=r"unit 'EUR/MWh' \(values\[0:4\]\) cannot be") as exc:
        check_messages(outgoing("load", unit="EUR/MWh"), SENSORS)
    assert exc.value.field == "unit"


def test_another_resolution_is_refused_naming_the_argument():
    with pytest.raises(InputError, match="PT1H apart.*PT15M") as exc:
        check_messages(outgoing("load", step=timedelta(hours=1)), SENSORS)
    assert exc.value.field == "resolution"
    # An instantaneous sensor takes series at any spacing, but single readings only at PT0M.
    check_messages(outgoing("soc", step=timedelta(hours=1)), SENSORS)
    one = belief_record("soc", T0, 4.0, resolution=Q, source="bms")
    with pytest.raises(InputError, match=r"'soc' \(value\) lasts PT15M.*PT0M"):
        check_messages([Outgoing("Belief", one, "value")], SENSORS)
    ok = belief_record("soc", T0, 4.0, resolution=timedelta(0), source="bms")
    check_messages([Outgoing("Belief", ok, "value")], SENSORS)


def test_nan_passes_the_check_and_is_left_to_the_worker():
    recs = batch_records("load", T0, Q, [1.0, math.nan], source="m")
    check_messages([Outgoing("BeliefBatch", recs[0], "values[0:2]")], SENSORS)


@settings(max_examples=examples(200))
@given(n=st.integers(1, 200), max_values=st.integers(1, 50))
def test_value_ranges_cover_the_series_once_in_order(n, max_values):
    recs = batch_records("load", T0, Q, range(n), source="m", max_values=max_values)
    ranges = value_ranges(recs)
    bounds = [tuple(map(int, r[len("values[") : -1].split(":"))) for r in ranges]
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    assert [hi - lo for lo, hi in bounds] == [len(r["values"]) for r in recs]


def test_known_sensors_are_read_once_and_again_on_a_miss():
    registry = [{"soc": SOC}]
    known = KnownSensors(lambda: dict(registry[-1]))
    known.check(outgoing("soc"))
    known.check(outgoing("soc"))
    assert known.reads == 1
    registry.append({"soc": SOC, "load": LOAD})  # registered a moment ago
    known.check(outgoing("load"))
    assert known.reads == 2
    known.check(outgoing("load"))
    assert known.reads == 2
    with pytest.raises(InputError, match="'heat'"):
        known.check(outgoing("heat"))
    assert known.reads == 3


def test_a_first_read_that_misses_is_not_read_again():
    known = KnownSensors(lambda: {})
    with pytest.raises(InputError, match="not registered"):
        known.check(outgoing("load"))
    assert known.reads == 1


def test_the_belief_time_of_publishing():
    assert publishing_belief_time(None, None, lambda: NOW) == NOW
    earlier = NOW - timedelta(days=1)
    assert publishing_belief_time(earlier, None, lambda: NOW) == earlier
    assert publishing_belief_time(None, timedelta(0), lambda: NOW) is None


def receipt(positions, start) -> Receipt:
    return Receipt(
        topic="r",
        sensor="load",
        beliefs=len(positions),
        messages=len(positions),
        sent_at=NOW,
        dead_letters_from=start,
        positions=list(positions),
    )


def test_dead_letters_of_several_receipts_are_read_from_the_lowest_start():
    a, b = receipt([("r", 0, 1)], {0: 5, 1: 2}), receipt([("r", 0, 2)], {0: 3})
    assert dead_letters_start([a, b]) == {0: 3, 1: 2}
    assert dead_letters_start([a, receipt([], None)]) is None
    assert a.confirmed and not Receipt("r", "load", 2, 2, NOW).confirmed


def test_a_landing_with_pending_messages_raises_with_what_is_pending():
    letter = DeadLetterInfo(NOW, "not-finite", "values", "r", 0, 6, 1, "NaN", "load")
    published = [("r", 0, 5), ("r", 0, 6), ("r", 0, 7)]
    done = tally(published[:2], {("r", 0): 8}, [letter])
    assert landed_or_raise(done, 10, "g") is done
    assert (done.stored, done.dead_lettered, done.all_stored) == (1, 1, False)
    with pytest.raises(NotLanded, match="1 of 3 messages were not handled within 10 s") as exc:
        landed_or_raise(tally(published, {("r", 0): 7}, [letter]), 10, "g")
    assert exc.value.landing.pending == 1 and exc.value.landing.dead_lettered == 1


@settings(max_examples=examples(200))
@given(
    offsets=st.lists(st.integers(0, 30), unique=True, max_size=20),
    committed=st.integers(-1, 31),
    rejected=st.sets(st.integers(0, 30)),
)
def test_every_published_message_is_counted_once(offsets, committed, rejected):
    letters = [DeadLetterInfo(NOW, "e", None, "r", 0, o, None, "x", "s") for o in rejected]
    out: Landing = tally([("r", 0, o) for o in offsets], {("r", 0): committed}, letters)
    assert out.stored + out.dead_lettered + out.pending == out.published == len(offsets)
    assert out.pending == sum(o >= committed for o in offsets)
    assert out.all_stored == (out.stored == len(offsets))


def test_the_client_follows_the_worker_group_of_its_topic_prefix():
    c = FlexStreamClient("h:1", topic_prefix="x.", clock=lambda: NOW, check=False)
    assert c.readings_group == "x.worker.readings" and c.clock() == NOW and not c.check
