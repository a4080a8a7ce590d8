"""Schedules reach the store through a sink: retried until they land, refused ones fail (no I/O)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from test_sink import FakeStore

from schemas.beliefs import BeliefColumns
from schemas.errors import ConnectorError
from streams.health import Health
from streams.ingest.sink import BeliefSink
from streams.scheduling.agent import store_schedules

H_US = 3_600_000_000


def schedule_beliefs(values: list[float]) -> BeliefColumns:
    n = len(values)
    c = BeliefColumns()
    c.sensor.append("battery")
    c.source.append("flexstream-scheduler")
    c.counts.append(n)
    c.event_start_us.append(H_US * np.arange(n, dtype=np.int64))
    c.belief_time_us.append(np.zeros(n, dtype=np.int64))
    c.event_resolution_s.append(np.full(n, 3600, dtype=np.uint32))
    c.cumulative_probability.append(np.full(n, 0.5))
    c.event_value.append(np.asarray(values, dtype=float))
    return c


def run_db(calls: list[str]):
    async def run(fn, *args):
        calls.append(fn.__name__)
        return fn(*args)

    return run


def sink_for(store: FakeStore, health: Health) -> BeliefSink:
    sink = BeliefSink(store, health, name="schedules")  # type: ignore[arg-type]
    sink.first_backoff = sink.max_backoff = 0.0
    return sink


def test_schedules_are_retried_until_the_store_takes_them():
    store, health, calls = FakeStore(down_for=2), Health(started=True), []
    seen_failing = []
    sink = sink_for(store, health)
    real_write = sink.write

    def write() -> int:
        seen_failing.append("schedules" in health.problems)
        return real_write()

    sink.write = write  # type: ignore[method-assign]
    asyncio.run(store_schedules(sink, run_db(calls), schedule_beliefs([1.0, -2.0, 0.5]), "r1"))
    assert store.rows == [1.0, -2.0, 0.5]
    assert calls == ["write"] * 3  # two failures, then it lands; each on the store's thread
    assert seen_failing == [False, True, True]  # /ready said why while it failed
    assert health.ready and sink.written == 3
    assert store.sources == []  # the scheduler's source is not recorded, as before


def test_schedules_the_store_refuses_for_good_fail_the_request():
    store, health = FakeStore(), Health(started=True)
    sink = sink_for(store, health)
    with pytest.raises(ConnectorError, match="refuses the schedules of request r2: .*poison"):
        asyncio.run(store_schedules(sink, run_db([]), schedule_beliefs([666.0]), "r2"))
    assert store.rows == [] and health.ready


def test_the_schedule_sink_reports_under_its_own_name():
    store, health = FakeStore(down_for=1), Health(started=True)
    sink = sink_for(store, health)
    sink.attempts_before_isolating = 99
    health.failing("beliefs", "readings failing")
    asyncio.run(store_schedules(sink, run_db([]), schedule_beliefs([1.0]), "r3"))
    assert list(health.problems) == ["beliefs"]  # the readings' problem stays theirs
