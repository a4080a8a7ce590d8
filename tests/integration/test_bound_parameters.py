"""Values reach the real embedded engine as bound parameters on every query path we write.

A sensor name with quotes, backslashes and SQL in it is stored, then read back
through each query: the streaming report's inputs (on the worker's store), the
batch report's inputs and the chart's history (through the analysts' client),
and the demo's lists and KPI table. Had any of them written the name into the
SQL text, the query would fail or find nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.clickhouse import Store, identifier, in_list
from connectors.settings import Settings
from schemas import serde
from schemas.beliefs import Sensor, validate
from schemas.errors import ConnectorError
from streams.reports.batch import history_frames, known_sensors
from streams.reports.compute import frame_from_rows, input_sql
from streams.sql.access import query_rows

#: Quotes, backslashes, a comment and a statement end: harmless only when bound.
HOSTILE = "pv'roof\\\"; DROP TABLE beliefs; --\\'"
#: Another sensor whose beliefs must not come back for HOSTILE.
DECOY = "pv"
START = datetime(2026, 3, 28, tzinfo=UTC)
END = START + timedelta(days=1)

pytestmark = pytest.mark.integration


def sensor(name: str, resolution: str = "PT1H") -> Sensor:
    return Sensor(name=name, unit="kW", event_resolution=resolution, timezone="Europe/Amsterdam")


def store_beliefs(
    store: Store, s: Sensor, start: datetime, values: list[float], source: str = "meter"
) -> None:
    rec = {
        "sensor": s.name,
        "start": start,
        "resolution_ms": int(s.event_resolution / timedelta(milliseconds=1)),
        "values": values,
        "belief_time": start + timedelta(days=3),
        "source": source,
    }
    kind, decoded = serde.decode(serde.encode("BeliefBatch", rec))
    cols, rejected = validate(kind, decoded, {s.name: s}, datetime(2030, 1, 1, tzinfo=UTC))
    assert rejected == []
    store.insert_beliefs(cols.to_arrow())


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A data folder holding 24 hourly beliefs of HOSTILE and of DECOY (values 1 and 9)."""
    monkeypatch.setenv("FLEXSTREAM_DATA_DIR", str(tmp_path))
    store = Store.open(None, "flexstream", tmp_path)
    try:
        store.upsert_sensors([sensor(HOSTILE), sensor(DECOY)])
        store_beliefs(store, sensor(HOSTILE), START, [1.0] * 24)
        store_beliefs(store, sensor(DECOY), START, [9.0] * 24)
    finally:
        store.close()
    return Settings()


def test_report_inputs_bind_the_sensor_name_on_the_workers_store(history: Settings):
    store = Store.open(None, "flexstream", history.paths.root)
    try:
        sql, params = input_sql("flexstream", HOSTILE, START, END, timedelta(hours=1))
        assert HOSTILE not in sql
        rows = json.loads(store.raw(sql, "JSONCompact", params))["data"]
    finally:
        store.close()
    frame = frame_from_rows(rows)
    assert len(frame) == 24 and set(frame["event_value"]) == {1.0}


def test_report_inputs_bind_the_sensor_name_through_the_analysts_client(history: Settings):
    sql, params = input_sql("flexstream", HOSTILE, START, END, timedelta(hours=1))
    frame = frame_from_rows(query_rows(history, sql, params)[1])
    assert len(frame) == 24 and set(frame["event_value"]) == {1.0}


def test_the_charts_history_binds_the_sensor_name(history: Settings):
    frames = history_frames(history, [HOSTILE, DECOY], START + timedelta(hours=2), END)
    assert len(frames[HOSTILE]) == 22 and set(frames[HOSTILE]["event_value"]) == {1.0}
    assert set(frames[DECOY]["event_value"]) == {9.0}
    assert HOSTILE in known_sensors(history, with_registry=False)


def test_a_bound_in_list_matches_hostile_names_exactly(history: Settings):
    names, params = in_list("name", [HOSTILE, "pv'roof", "nothing"])
    rows = query_rows(history, f"SELECT name FROM sensors FINAL WHERE name IN {names}", params)[1]
    assert rows == [[HOSTILE]]


def test_the_demo_kpis_bind_the_site_and_its_timezone(history: Settings):
    from streams.demo.reports import _print_kpis, kpi_sensors

    site = HOSTILE
    kpi = kpi_sensors(site, "Europe/Amsterdam")[0]
    store = Store.open(None, "flexstream", history.paths.root)
    try:
        store.upsert_sensors([kpi])
        day = datetime(2026, 3, 27, 23, tzinfo=UTC)  # local midnight in Amsterdam
        store_beliefs(store, kpi, day, [12.5], source="flexstream-reporter:kpi")
    finally:
        store.close()
    kpis = _print_kpis(history, print, site, "Europe/Amsterdam", day, day + timedelta(days=1))
    assert kpis == {"2026-03-28": {"energy-consumed": 12.5}}


@pytest.mark.parametrize("name", ["flexstream", "fs_2", "_x"])
def test_a_plain_database_name_passes(name):
    assert identifier(name) == name


@pytest.mark.parametrize("name", ["flex-stream", "db.beliefs", "x; DROP TABLE y", "`x`", "1db", ""])
def test_a_database_name_that_is_not_plain_is_refused(name, tmp_path):
    with pytest.raises(ConnectorError, match="not a plain identifier"):
        identifier(name)
    with pytest.raises(ConnectorError, match="not a plain identifier"):
        input_sql(name, "s", START, END, timedelta(hours=1))
