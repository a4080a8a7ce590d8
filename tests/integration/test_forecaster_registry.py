"""Forecasters on the registry topic: add, show, refuse, delete (through the CLI)."""

from __future__ import annotations

import json

import pytest
import yaml

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
