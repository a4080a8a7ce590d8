"""Analysts' SQL on the real engine: the project's database by default, FORMAT in the SQL,
one value per event across sources. Each runs directly and through a running worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.clickhouse import Store
from connectors.settings import PathSettings, Settings
from schemas import serde
from schemas.beliefs import Sensor, validate
from schemas.errors import ConnectorError
from streams.sql.access import execute_sql, query_rows, run_sql
from tests.integration.conftest import batch, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=UTC)
PV = Sensor(name="pv", unit="kW", event_resolution="PT15M")


def _beliefs(values: list[float], source: str, belief_time: datetime | None = None, **kw):
    rec = {
        "sensor": "pv",
        "start": T0,
        "resolution_ms": 900_000,
        "values": values,
        "belief_time": belief_time,
        "source": source,
        **kw,
    }
    kind, dec = serde.decode(serde.encode("BeliefBatch", rec))
    cols, rejected = validate(kind, dec, {"pv": PV}, datetime(2030, 1, 1, tzinfo=UTC))
    assert rejected == []
    return cols.to_arrow()


@pytest.fixture
def direct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A data folder without a worker: 4 events of pv believed by two sources."""
    monkeypatch.delenv("CLICKHOUSE_URL", raising=False)
    data = tmp_path / "data"
    store = Store.open(None, "flexstream", data)
    early, late = T0 - timedelta(days=1), T0 - timedelta(hours=1)
    store.insert_beliefs(_beliefs([1.0, 2.0, 3.0, 4.0], "meter", early))
    store.insert_beliefs(_beliefs([10.0, 20.0], "forecaster", late))  # newer for events 0, 1
    store.insert_beliefs(_beliefs([30.0], "zz-model", early))  # a tie with meter on event 0
    store.insert_beliefs(_beliefs([99.0, 99.0], "meter", T0 - timedelta(minutes=1)))  # replayed
    store.insert_beliefs(_beliefs([99.0, 99.0], "meter", T0 - timedelta(minutes=1)))
    store.close()
    return Settings(paths=PathSettings(data_dir=data))


def test_the_project_database_is_the_default(direct):
    assert query_rows(direct, "SELECT currentDatabase()")[1] == [["flexstream"]]
    assert query_rows(direct, "SELECT count() FROM beliefs FINAL")[1] == [[9]]
    assert query_rows(direct, "SELECT count() FROM flexstream.beliefs FINAL")[1] == [[9]]


def test_a_format_clause_in_the_sql(direct):
    sql = "SELECT count() AS n FROM beliefs FINAL FORMAT CSVWithNames"
    assert run_sql(direct, sql, None) == b'"n"\n9\n'
    assert run_sql(direct, sql, "csvwithnames") == b'"n"\n9\n'  # the same, asked twice
    result = execute_sql(direct, "SELECT 1 AS a format csv;")
    assert (result.data, result.format, result.own_format) == (b"1\n", "CSV", True)
    result = execute_sql(direct, "SELECT 1 AS a")
    assert (json.loads(result.data)["data"], result.format, result.own_format) == (
        [[1]],
        "JSONCompact",
        False,
    )
    parquet = run_sql(direct, "SELECT * FROM beliefs FORMAT Parquet", None)
    assert parquet[:4] == b"PAR1"
    # statements whose tree holds other bare names beside (or instead of) a FORMAT
    assert b"beliefs" in run_sql(direct, "SHOW TABLES FROM flexstream", "CSV")
    assert b"latest_values" in run_sql(direct, "SHOW TABLES FROM flexstream FORMAT CSV", None)
    assert run_sql(direct, "EXISTS TABLE beliefs FORMAT TabSeparated", None) == b"1\n"
    assert json.loads(run_sql(direct, "EXISTS TABLE beliefs", None))["data"] == [[1]]


@pytest.mark.parametrize(
    ("sql", "fmt", "message"),
    [
        ("SELECT 1 FORMAT Protobuf", None, "FORMAT Protobuf in the SQL is not offered"),
        ("SELECT 1 FORMAT TSVRaw", None, "FORMAT TSVRaw in the SQL is not offered"),
        ("SELECT 1 FORMAT Template", "CSV", "FORMAT Template in the SQL is not offered"),
        ("SELECT 1 FORMAT CSV", "JSONCompact", "asks for FORMAT CSV but format 'JSONCompact'"),
        ("SELECT 1", "CapnProto", "format 'CapnProto' is not offered"),
        ("SELECT 1 FORMAT CSV FORMAT JSON", None, "refused"),
    ],
)
def test_formats_off_the_list_are_refused(direct, sql, fmt, message):
    with pytest.raises(ConnectorError, match="query failed: refused") as err:
        run_sql(direct, sql, fmt)
    assert message in str(err.value)
    assert "FORMAT JSONCompact" not in str(err.value)  # nothing of ours shows


def test_latest_values_one_per_event_across_sources(direct):
    sql = (
        "SELECT toString(event_start), event_resolution, toString(belief_time), source, "
        "event_value FROM latest_values ORDER BY event_start"
    )
    rows = query_rows(direct, sql)[1]
    day = "2026-05-31 00:00:00.000000"
    minute = "2026-05-31 23:59:00.000000"
    assert rows == [
        ["2026-06-01 00:00:00.000000", 900, minute, "meter", 99.0],
        ["2026-06-01 00:15:00.000000", 900, minute, "meter", 99.0],
        ["2026-06-01 00:30:00.000000", 900, day, "meter", 3.0],
        ["2026-06-01 00:45:00.000000", 900, day, "meter", 4.0],
    ]
    names = query_rows(direct, "SELECT * FROM latest_values LIMIT 0")[0]
    assert names == [
        "sensor",
        "event_start",
        "event_resolution",
        "belief_time",
        "source",
        "event_value",
    ]
    # beside it, one row per event and source
    assert query_rows(direct, "SELECT count() FROM latest_beliefs")[1] == [[4 + 2 + 1]]


def test_latest_values_ties_go_to_the_source_name_sorting_last(tmp_path, monkeypatch):
    monkeypatch.delenv("CLICKHOUSE_URL", raising=False)
    data = tmp_path / "data"
    store = Store.open(None, "flexstream", data)
    at = T0 - timedelta(hours=2)
    store.insert_beliefs(_beliefs([1.0, 5.0], "meter", at))
    store.insert_beliefs(_beliefs([2.0], "b-model", at))
    store.insert_beliefs(_beliefs([3.0], "z-model", at - timedelta(seconds=1)))  # older
    store.close()
    s = Settings(paths=PathSettings(data_dir=data))
    rows = query_rows(s, "SELECT source, event_value FROM latest_values ORDER BY event_start")[1]
    assert rows == [["meter", 1.0], ["meter", 5.0]]


def test_through_the_worker(fs):
    fs.start_worker()
    fs.publish(
        "readings.meter",
        [("pv", batch("pv", T0, [1.0, 2.0, 3.0]))],
    )
    wait_for(lambda: fs.sql("SELECT count() FROM beliefs FINAL") == [[3]], what="3 beliefs")
    s = fs.settings()
    assert fs.sql("SELECT currentDatabase()") == [["flexstream"]]
    result = execute_sql(s, "SELECT count() AS n FROM beliefs FINAL FORMAT CSVWithNames")
    assert (result.data, result.format, result.own_format) == (b'"n"\n3\n', "CSVWithNames", True)
    assert run_sql(s, "SELECT 2 FORMAT CSV", "CSV") == b"2\n"
    assert json.loads(run_sql(s, "SELECT 3 AS x", None))["data"] == [[3]]
    with pytest.raises(ConnectorError, match="FORMAT Protobuf in the SQL is not offered"):
        run_sql(s, "SELECT 1 FORMAT Protobuf", None)
    with pytest.raises(ConnectorError, match="refused: the SQL asks for FORMAT CSV"):
        run_sql(s, "SELECT 1 FORMAT CSV", "JSON")
    assert fs.sql("SELECT sum(event_value), count() FROM latest_values") == [[6.0, 3]]

    cli = [sys.executable, "-m", "streams.cli", "sql"]
    own = subprocess.run(
        [*cli, "SELECT count() AS n FROM beliefs FINAL FORMAT CSVWithNames"],
        env=fs.env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert (own.returncode, own.stdout) == (0, b'"n"\n3\n'), own.stderr
    as_json = subprocess.run(
        [*cli, "SELECT count() AS n FROM latest_values", "--format", "json"],
        env=fs.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == [{"n": 3}]
