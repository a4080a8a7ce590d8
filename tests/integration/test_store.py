"""The history store on the real embedded ClickHouse engine."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from connectors.clickhouse import Store
from schemas import serde
from schemas.beliefs import Sensor, validate
from schemas.errors import ConnectorError

pytestmark = pytest.mark.integration

SENSORS = {
    "pv": Sensor(name="pv", unit="kW", event_resolution="PT15M"),
    "soc": Sensor(name="soc", unit="kWh", event_resolution="PT0M"),
}


def _columns(start, values, belief_time=None, sensor="pv"):
    rec = {
        "sensor": sensor,
        "start": start,
        "resolution_ms": 900_000,
        "values": values,
        "belief_time": belief_time,
        "source": "meter",
    }
    kind, dec = serde.decode(serde.encode("BeliefBatch", rec))
    cols, rejected = validate(kind, dec, SENSORS, datetime(2030, 1, 1, tzinfo=UTC))
    assert rejected == []
    return cols


@pytest.fixture
def store(tmp_path):
    s = Store.open(None, "flexstream", tmp_path)
    yield s
    s.close()


def test_ddl_is_idempotent_and_replays_never_duplicate(store):
    store.ensure_schema()
    store.ensure_schema()
    t0 = datetime(2026, 3, 29, 0, 45, 0, 123456, tzinfo=UTC)
    cols = _columns(t0, [1.0, 2.0, 3.0], sensor="soc")
    store.insert_beliefs(cols.to_arrow())
    store.insert_beliefs(cols.to_arrow())
    assert store.rows("SELECT count() FROM flexstream.beliefs FINAL") == [(3,)]
    rows = store.rows("SELECT event_start, belief_time FROM flexstream.beliefs FINAL ORDER BY 1")
    assert rows[0][0] == t0
    assert rows[0][0].tzinfo is not None and rows[0][0].utcoffset() == timedelta(0)
    # Instantaneous readings without a horizon are known at their own time.
    assert [r[1] for r in rows] == [t0 + timedelta(minutes=15 * i) for i in range(3)]


def test_a_newer_belief_is_a_new_row_and_latest_beliefs_picks_it(store):
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    store.insert_beliefs(_columns(t0, [5.0], belief_time=t0 - timedelta(days=1)).to_arrow())
    store.insert_beliefs(_columns(t0, [6.0], belief_time=t0 - timedelta(hours=1)).to_arrow())
    assert store.rows("SELECT count() FROM flexstream.beliefs FINAL") == [(2,)]
    assert store.rows("SELECT event_value FROM flexstream.latest_beliefs") == [(6.0,)]


def test_a_second_process_gets_a_clear_message(store, tmp_path):
    code = (
        "import sys\n"
        "from connectors.clickhouse import Store\n"
        "from schemas.errors import ConnectorError\n"
        f"try:\n    Store.open(None, 'flexstream', {str(tmp_path)!r})\n"
        "except ConnectorError as e:\n    print(e); sys.exit(3)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "another process" in out.stdout and "flexstream sql" in out.stdout


def test_bad_database_name_is_refused(tmp_path):
    with pytest.raises(ConnectorError, match="CLICKHOUSE_DATABASE"):
        Store.open(None, "drop table; --", tmp_path)
