"""Schedules from their topic reach the store through a sink: the ingest role's path (no I/O)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from test_sink import FakeStore

from connectors.batch_consumer import RawMessage
from schemas.schedule import Schedule, Status
from streams.health import Health
from streams.ingest.outputs import schedule_beliefs
from streams.ingest.sink import BeliefSink
from streams.scheduling.problem import SCHEDULER_SOURCE

T0 = datetime(2026, 6, 10, tzinfo=UTC)
NOW = T0 + timedelta(minutes=3)


def schedule(values: list[float], soc: list[float] | None = None, **kw) -> Schedule:
    return Schedule(
        request_id=kw.pop("request_id", "r1"),
        asset="home",
        sensor="battery",
        status=kw.pop("status", Status.OPTIMAL),
        start=T0,
        resolution=timedelta(hours=1),
        belief_time=NOW,
        values=values,
        state_of_charge=soc or [],
        **kw,
    )


def message(value: bytes | None, offset: int = 0) -> RawMessage:
    return RawMessage("schedules", 1, offset, b"battery", value)


def run_db(calls: list[str]):
    async def run(fn, *args):
        calls.append(fn.__name__)
        return fn(*args)

    return run


def sink_for(store: FakeStore, health: Health) -> BeliefSink:
    sink = BeliefSink(store, health, name="schedules")  # type: ignore[arg-type]
    sink.first_backoff = sink.max_backoff = 0.0
    return sink


def store(sink: BeliefSink, msgs: list[RawMessage], calls: list[str]):
    result = schedule_beliefs(msgs, NOW, 4096)
    sink.add_parts(result.parts, result.sources)
    return asyncio.run(sink.flush(run_db(calls), "schedules[1]@0", "schedules[1]@9"))


def test_a_schedule_on_the_topic_becomes_power_and_soc_beliefs_of_the_scheduler():
    msg = message(schedule([1.0, -2.0], [4.0, 5.0, 3.0], soc_sensor="battery-soc").to_avro())
    result = schedule_beliefs([msg], NOW, 4096)
    cols = result.beliefs
    assert cols.sensor == ["battery", "battery-soc"] and set(cols.source) == {SCHEDULER_SOURCE}
    assert [list(v) for v in cols.event_value] == [[1.0, -2.0], [4.0, 5.0, 3.0]]
    power_starts, soc_starts = cols.event_start_us
    hour = 3_600_000_000
    assert list(np.diff(power_starts)) == [hour] and list(np.diff(soc_starts)) == [hour, hour]
    assert [list(r) for r in cols.event_resolution_s] == [[3600, 3600], [0, 0, 0]]
    assert {int(b) for bt in cols.belief_time_us for b in bt} == {int(NOW.timestamp() * 1e6)}
    assert result.dead_letters == [] and [o.stored for o in result.outcomes] == [5]


def test_a_schedule_without_a_soc_sensor_stores_its_power_only():
    msg = message(schedule([1.0], [4.0, 5.0]).to_avro())
    assert schedule_beliefs([msg], NOW, 4096).beliefs.sensor == ["battery"]


def test_schedules_without_values_store_nothing_and_bad_bytes_are_dead_letters():
    failed = schedule([], status=Status.ERROR, message="price missing").to_avro()
    result = schedule_beliefs(
        [message(failed), message(b"\x00garbage", 1), message(None, 2)], NOW, 4096
    )
    assert len(result.beliefs) == 0 and result.parts == []
    assert [(d["offset"], d["error"]) for d in result.dead_letters] == [
        (1, "bad-bytes"),
        (2, "bad-bytes"),
    ]
    assert [(o.stored, o.rejected) for o in result.outcomes] == [(0, 0), (0, 1), (0, 1)]


def test_schedules_are_retried_until_the_store_takes_them():
    fake, health, calls = FakeStore(down_for=2), Health(started=True), []
    sink = sink_for(fake, health)
    seen_failing = []
    real_write = sink.write

    def write() -> int:
        seen_failing.append("schedules" in health.problems)
        return real_write()

    sink.write = write  # type: ignore[method-assign]
    refused = store(sink, [message(schedule([1.0, -2.0, 0.5]).to_avro())], calls)
    assert refused == [] and fake.rows == [1.0, -2.0, 0.5]
    assert calls == ["write"] * 3  # two failures, then it lands; each on the store's thread
    assert seen_failing == [False, True, True]  # /ready said why while it failed
    assert health.ready and sink.written == 3
    assert fake.sources == []  # the scheduler's source is not recorded, as before


def test_a_schedule_the_store_refuses_for_good_is_returned_as_refused_by_its_message():
    fake, health = FakeStore(), Health(started=True)
    sink = sink_for(fake, health)
    good, poison = schedule([1.0]).to_avro(), schedule([666.0], request_id="r2").to_avro()
    refused = store(sink, [message(good), message(poison, 1)], [])
    assert [(i, "poison" in err) for i, err in refused] == [(1, True)]
    assert fake.rows == [1.0] and health.ready


@pytest.mark.parametrize("soc_sensor", [None, "battery-soc"])
def test_the_soc_sensor_travels_on_the_topic(soc_sensor):
    s = schedule([1.0], [2.0, 3.0], soc_sensor=soc_sensor)
    assert Schedule.from_avro(s.to_avro()) == s
