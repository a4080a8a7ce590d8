"""Forecasters on the registry topic: add, show, refuse, delete (through the CLI)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml

from connectors.clickhouse import Store
from schemas.beliefs import Sensor, validate
from streams.forecasting.running import SCORE_COLUMNS, score_rows
from streams.forecasting.scoring import BucketScore
from tests.integration.test_cli import run

pytestmark = pytest.mark.integration


def test_forecasters_are_added_shown_refused_and_deleted(fs, tmp_path):
    sensors = tmp_path / "sensors.yaml"
    sensors.write_text(yaml.safe_dump([{"name": "pv", "unit": "kW", "event_resolution": "PT15M"}]))
    assert run(["add", "sensor", str(sensors)], fs.env).returncode == 0
    definition = {
        "name": "pv-ahead",
        "sensor": "pv",
        "site": {"latitude": 52.0, "longitude": 5.1, "tilt": 30},
        "max-forecast-horizon": "P1D",
        "quantiles": [0.1, 0.5, 0.9],
    }
    file = tmp_path / "forecaster.yaml"
    file.write_text(yaml.safe_dump(definition))
    out = run(["add", "forecaster", str(file)], fs.env)
    assert out.returncode == 0, out.stderr
    assert "registered 1 forecaster: pv-ahead" in out.stdout

    shown = run(["show", "forecasters", "--format", "json"], fs.env)
    assert shown.returncode == 0, shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row["name"] == "pv-ahead" and row["max-forecast-horizon"] == "P1D"
    assert row["quantiles"] == [0.1, 0.5, 0.9]
    table = run(["show", "forecasters"], fs.env)
    assert "pv-ahead" in table.stdout and "clear-sky" in table.stdout

    # A sensor a forecaster uses cannot be deleted; an unregistered target is refused.
    out = run(["delete", "sensor", "pv", "--yes"], fs.env)
    assert out.returncode == 2 and "forecaster 'pv-ahead'" in out.stderr
    file.write_text(yaml.safe_dump({**definition, "name": "ghost", "sensor": "nowhere"}))
    out = run(["add", "forecaster", str(file)], fs.env)
    assert out.returncode == 2 and "'nowhere' is not registered" in out.stderr
    file.write_text(yaml.safe_dump({**definition, "quantiles": [0.1, 0.9]}))
    out = run(["add", "forecaster", str(file)], fs.env)
    assert out.returncode == 2 and "quantiles" in out.stderr and "median" in out.stderr

    out = run(["delete", "forecaster", "pv-ahead", "--yes"], fs.env)
    assert out.returncode == 0, out.stderr
    assert json.loads(run(["show", "forecasters", "--format", "json"], fs.env).stdout) == []
    assert run(["delete", "forecaster", "pv-ahead", "--yes"], fs.env).returncode == 2
    assert run(["delete", "sensor", "pv", "--yes"], fs.env).returncode == 0


def test_purging_a_forecaster_deletes_its_forecasts_and_scores_only(fs, tmp_path):
    sensors = tmp_path / "sensors.yaml"
    sensors.write_text(yaml.safe_dump([{"name": "pv", "unit": "kW", "event_resolution": "PT1H"}]))
    assert run(["add", "sensor", str(sensors)], fs.env).returncode == 0
    file = tmp_path / "forecaster.yaml"
    file.write_text(yaml.safe_dump({"name": "pv-ahead", "sensor": "pv"}))
    assert run(["add", "forecaster", str(file)], fs.env).returncode == 0
    s = fs.settings()
    store = Store.open(None, s.clickhouse.database, s.paths.root)
    t0 = datetime(2026, 4, 1, tzinfo=UTC)
    for source, cp in (("meter", 0.5), ("forecaster:pv-ahead", 0.5), ("forecaster:pv-ahead", 0.9)):
        cols, rejected = validate(
            "BeliefBatch",
            {
                "sensor": "pv",
                "start": t0,
                "resolution_ms": 3_600_000,
                "values": [1.0, 2.0],
                "belief_time": t0,
                "source": source,
                "cumulative_probability": cp,
            },
            {"pv": Sensor(name="pv", unit="kW", event_resolution="PT1H")},
            t0,
        )
        assert rejected == []
        store.insert_beliefs(cols.to_arrow())
    rows = score_rows("forecaster:pv-ahead", "pv", [BucketScore(0, 3600, n=2)], 0, 1, t0)
    store.insert_forecast_scores(rows, SCORE_COLUMNS)
    store.close()
    out = run(["delete", "forecaster", "pv-ahead", "--purge", "--yes"], fs.env)
    assert out.returncode == 0, out.stderr
    assert "deleted forecaster pv-ahead and its 4 forecast beliefs" in out.stdout
    counts = "SELECT source, toUInt32(count()) FROM flexstream.beliefs GROUP BY source"
    assert fs.sql(counts) == [["meter", 2]]
    assert fs.sql("SELECT toUInt32(count()) FROM flexstream.forecast_scores") == [[0]]
