"""The sink: retries, isolation of refused parts, health; chunking of long inserts (no I/O)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from connectors.clickhouse import split_by_months
from schemas.beliefs import BeliefColumns
from streams.health import Health
from streams.ingest.sink import BeliefSink


def cols(start_us: int, n: int, step_us: int = 3_600_000_000, value: float = 1.0) -> BeliefColumns:
    c = BeliefColumns()
    c.sensor.append("s")
    c.source.append("src")
    c.counts.append(n)
    c.event_start_us.append(start_us + step_us * np.arange(n, dtype=np.int64))
    c.belief_time_us.append(np.full(n, start_us, dtype=np.int64))
    c.event_resolution_s.append(np.full(n, 3600, dtype=np.uint32))
    c.cumulative_probability.append(np.full(n, 0.5))
    c.event_value.append(np.full(n, value))
    return c


class FakeStore:
    """Refuses inserts holding a poison value; can be 'down' for a number of calls."""

    def __init__(self, down_for: int = 0) -> None:
        self.rows: list[float] = []
        self.down_for = down_for
        self.sources: list[str] = []

    def insert_beliefs(self, table: pa.Table) -> int:
        if self.down_for > 0:
            self.down_for -= 1
            raise ConnectionError("store down")
        values = table.column("event_value").to_pylist()
        if 666.0 in values:
            raise ValueError("Code: 252. poison")
        self.rows.extend(values)
        return len(values)

    def add_sources(self, names):
        self.sources.extend(names)

    def ping(self) -> bool:
        return self.down_for == 0


async def run(fn, *args):
    return fn(*args)


def flush(sink: BeliefSink):
    return asyncio.run(sink.flush(run, "t[0]@0", "t[0]@9"))


def fast(sink: BeliefSink) -> BeliefSink:
    sink.first_backoff = sink.max_backoff = 0.0
    return sink


def test_a_batch_lands_in_one_insert_and_reports_healthy():
    store, health = FakeStore(), Health(started=True)
    sink = fast(BeliefSink(store, health))
    sink.add(cols(0, 3), {"src"}, 0)
    sink.add(cols(0, 2), {"src"}, 1)
    assert flush(sink) == []
    assert len(store.rows) == 5 and sink.written == 5 and health.ready


def test_a_part_the_store_refuses_is_handed_back_and_the_rest_lands():
    store, health = FakeStore(), Health(started=True)
    sink = fast(BeliefSink(store, health))
    sink.add(cols(0, 3), {"src"}, 0)
    sink.add(cols(0, 2, value=666.0), {"src"}, 1)
    sink.add(cols(0, 4), {"src"}, 2)
    refused = flush(sink)
    assert [tag for tag, _ in refused] == [1]
    assert "poison" in refused[0][1]
    assert len(store.rows) == 7 and health.ready


def test_a_store_that_is_down_is_retried_not_judged():
    store, health = FakeStore(down_for=5), Health(started=True)
    sink = fast(BeliefSink(store, health))
    sink.add(cols(0, 3), {"src"}, 0)
    assert flush(sink) == []
    assert len(store.rows) == 3 and health.ready


def test_health_reports_failing_writes_until_they_work():
    health = Health(started=True)
    health.failing("beliefs", "writing x failed")
    health.failing("beliefs", "writing x failed again")
    report = health.report()
    assert not report["ready"] and report["problems"]["beliefs"]["failures"] == 2
    health.ok("beliefs")
    assert health.report() == {
        "ready": True,
        "started": True,
        "roles": [],
        "store": "write",
        "problems": {},
    }


def _table(start_us: int, n: int, step_us: int) -> pa.Table:
    return cols(start_us, n, step_us).to_arrow()


def test_a_short_series_is_one_insert():
    t = _table(0, 96, 900_000_000)
    assert split_by_months(t, 48) == [t]


def test_a_series_over_101_months_is_split_into_chunks_of_at_most_48_months():
    month_us = 31 * 86_400 * 1_000_000
    t = _table(0, 101 * 30, month_us // 30)
    chunks = split_by_months(t, 48)
    assert sum(c.num_rows for c in chunks) == t.num_rows
    for c in chunks:
        starts = c.column("event_start").to_numpy().astype("datetime64[M]")
        assert len(np.unique(starts)) <= 48
    got = np.sort(np.concatenate([c.column("event_start").to_numpy() for c in chunks]))
    assert (got == np.sort(t.column("event_start").to_numpy())).all()


def test_splitting_covers_years_1900_to_2299_unordered():
    rng = np.random.default_rng(1)
    lo = int((datetime(1900, 1, 1, tzinfo=UTC).timestamp()) * 1e6)
    hi = int((datetime(2299, 12, 1, tzinfo=UTC).timestamp()) * 1e6)
    starts = rng.integers(lo, hi, 5000)
    c = cols(0, 5000)
    c.event_start_us = [starts]
    t = c.to_arrow()
    chunks = split_by_months(t, 48)
    assert sum(x.num_rows for x in chunks) == 5000
    assert all(
        len(np.unique(x.column("event_start").to_numpy().astype("datetime64[M]"))) <= 48
        for x in chunks
    )


class RegistryStore:
    """Records upserts of sensors and assets; down for a number of calls."""

    def __init__(self, down_for: int = 0) -> None:
        self.down_for = down_for
        self.sensors: list[list[str]] = []
        self.assets: list[list[str]] = []
        self.forecasters: list[list[str]] = []
        self.forgotten: list[tuple[str, list[str]]] = []

    def _call(self) -> None:
        if self.down_for > 0:
            self.down_for -= 1
            raise ConnectionError("store down")

    def forget(self, table: str, names: list[str]) -> None:
        self._call()
        self.forgotten.append((table, sorted(names)))

    def upsert_sensors(self, sensors) -> None:
        self._call()
        self.sensors.append([f"{s.name}:{s.unit}" for s in sensors])

    def upsert_assets(self, assets) -> None:
        self._call()
        self.assets.append([a.name for a in assets])

    def upsert_forecasters(self, forecasters) -> None:
        self._call()
        self.forecasters.append([f"{f.name}:{f.sensor}" for f in forecasters])


def test_registry_changes_land_after_the_store_comes_back_newest_per_name():
    from schemas.assets import Asset
    from schemas.beliefs import Sensor
    from streams.ingest.sink import RegistrySink

    store, health = RegistryStore(down_for=2), Health(started=True)
    sink = fast(RegistrySink(store, health))
    sink.add(Sensor(name="pv", unit="kW"), Asset.model_validate({"name": "home"}))
    sink.add(Sensor(name="pv", unit="MW"))  # a newer definition of the same sensor
    seen_failing = []
    real = sink.health.failing

    def failing(*args):
        seen_failing.append(args)
        real(*args)

    sink.health.failing = failing
    assert flush(sink) == []
    assert store.sensors == [["pv:MW"]] and store.assets == [["home"]]
    assert len(seen_failing) == 2 and health.ready and len(sink) == 0


def test_deleted_registry_entries_leave_the_mirror_unless_defined_again():
    from schemas.assets import Asset
    from schemas.beliefs import Sensor
    from streams.ingest.sink import RegistrySink

    store = RegistryStore()
    sink = fast(RegistrySink(store, Health(started=True)))
    sink.add(Sensor(name="pv", unit="kW"), Sensor(name="load", unit="kW"))
    sink.add(Asset.model_validate({"name": "home"}))
    sink.remove("sensor", "pv")
    sink.remove("asset", "home")
    sink.remove("sensor", "heat")
    sink.add(Sensor(name="heat", unit="kW"))  # deleted, then registered again
    assert flush(sink) == []
    assert store.forgotten == [("sensors", ["pv"]), ("assets", ["home"])]
    assert store.sensors == [["load:kW", "heat:kW"]] and store.assets == []


def test_forecasters_are_mirrored_and_forgotten_apart_from_assets_of_the_same_name():
    from schemas.assets import Asset
    from schemas.forecaster import Forecaster
    from streams.ingest.sink import RegistrySink

    store = RegistryStore()
    sink = fast(RegistrySink(store, Health(started=True)))
    sink.add(Asset.model_validate({"name": "pv"}), Forecaster(name="pv", sensor="pv-power"))
    assert flush(sink) == []
    assert store.assets == [["pv"]] and store.forecasters == [["pv:pv-power"]]
    sink.remove("forecaster", "pv")
    assert flush(sink) == []
    assert store.forgotten == [("forecasters", ["pv"])]
