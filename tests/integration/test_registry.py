"""The registry on its compacted topic: CLI, the worker's global view, the ClickHouse mirror."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import yaml

from tests.integration.conftest import batch, wait_for
from tests.integration.test_cli import run

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, tzinfo=UTC)


def test_a_sensor_registered_while_the_worker_runs_is_used_for_validation(fs):
    fs.start_worker()
    out = run(
        ["add", "sensor", "--name", "heat", "--unit", "kW", "--event-resolution", "PT15M"], fs.env
    )
    assert out.returncode == 0, out.stderr
    assert "registered 1 sensor: heat" in out.stdout
    wait_for(
        lambda: fs.sql("SELECT count() FROM flexstream.sensors FINAL WHERE name = 'heat'") == [[1]],
        what="the sensor mirrored in ClickHouse",
    )
    fs.publish("readings.meter", [("heat", batch("heat", T0, [1.0, 2.0], unit="MW"))])
    wait_for(
        lambda: (
            fs.sql("SELECT sum(event_value) FROM flexstream.beliefs FINAL WHERE sensor = 'heat'")
            == [[3000.0]]
        ),
        what="heat beliefs",
    )
    shown = run(["show", "sensors", "--format", "json"], fs.env)
    assert {
        "name": "heat",
        "unit": "kW",
        "event_resolution": "PT15M",
        "timezone": "UTC",
        "off-grid": "reject",
        "description": "",
    } in json.loads(shown.stdout)


def test_assets_with_a_parent_are_registered_replaced_and_mirrored(fs, tmp_path):
    fs.start_worker()
    sensors = tmp_path / "sensors.yaml"
    sensors.write_text(
        yaml.safe_dump(
            [
                {"name": "battery-power", "unit": "kW", "event_resolution": "PT15M"},
                {"name": "battery-soc", "unit": "kWh", "event_resolution": "PT0M"},
                {"name": "price", "unit": "EUR/MWh", "event_resolution": "PT1H"},
            ]
        )
    )
    assert run(["add", "sensor", str(sensors)], fs.env).returncode == 0
    site = tmp_path / "assets.yaml"
    site.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "site",
                    "flex-context": {
                        "consumption-price": {"sensor": "price"},
                        "site-power-capacity": "25 kW",
                    },
                },
                {
                    "name": "battery",
                    "parent": "site",
                    "flex-model": {
                        "sensor": "battery-power",
                        "soc-at-start": "5 kWh",
                        "soc-max": "10 kWh",
                        "power-capacity": "5 kW",
                    },
                    "replan": {"on-new-prices": True},
                },
            ]
        )
    )
    out = run(["add", "asset", str(site)], fs.env)
    assert out.returncode == 0, out.stderr
    assert "registered 2 assets: site, battery" in out.stdout
    wait_for(
        lambda: (
            fs.sql("SELECT name, parent, devices FROM flexstream.assets FINAL ORDER BY name")
            == [["battery", "site", ["battery-power"]], ["site", None, []]]
        ),
        what="assets mirrored",
    )
    # A changed flex-model is a new event that replaces the old one.
    changed = tmp_path / "battery.json"
    changed.write_text(
        json.dumps(
            {
                "name": "battery",
                "parent": "site",
                "flex-model": {
                    "sensor": "battery-power",
                    "soc-at-start": {"sensor": "battery-soc"},
                    "soc-max": "20 kWh",
                    "power-capacity": "5 kW",
                },
            }
        )
    )
    assert run(["add", "asset", str(changed)], fs.env).returncode == 0
    shown = json.loads(run(["show", "assets", "--format", "json"], fs.env).stdout)
    battery = next(a for a in shown if a["name"] == "battery")
    assert battery["flex-model"] == [
        {
            "sensor": "battery-power",
            "soc-at-start": {"sensor": "battery-soc"},
            "soc-max": "20 kWh",
            "power-capacity": "5 kW",
        }
    ]
    wait_for(
        lambda: (
            "20 kWh"
            in fs.sql("SELECT body FROM flexstream.assets FINAL WHERE name = 'battery'")[0][0]
        ),
        what="mirror updated",
    )


def test_a_bad_asset_is_refused_naming_the_field(fs, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "flex-model": {
                    "sensor": "b",
                    "soc-at-start": "1 kWh",
                    "soc-max": "ten",
                    "power-capacity": "1 kW",
                },
            }
        )
    )
    out = run(["add", "asset", str(bad)], fs.env)
    assert out.returncode == 2
    assert "soc-max" in out.stderr
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        yaml.safe_dump(
            {
                "name": "y",
                "flex-model": {
                    "sensor": "b",
                    "soc-at-start": {"sensor": "nowhere"},
                    "power-capacity": "1 kW",
                },
            }
        )
    )
    out = run(["add", "asset", str(unknown)], fs.env)
    assert out.returncode == 2
    assert "'nowhere' is not registered" in out.stderr and "soc-at-start" in out.stderr


def test_a_parent_loop_is_refused_at_registration(fs, tmp_path):
    pair = tmp_path / "pair.yaml"
    pair.write_text(yaml.safe_dump([{"name": "a", "parent": "b"}, {"name": "b", "parent": "a"}]))
    out = run(["add", "asset", str(pair)], fs.env)
    assert out.returncode == 2, out.stdout
    assert "Traceback" not in out.stderr
    assert "error: parent: asset 'a' is its own ancestor (a -> b -> a)" in out.stderr
    itself = tmp_path / "itself.yaml"
    itself.write_text(yaml.safe_dump({"name": "c", "parent": "c"}))
    out = run(["add", "asset", str(itself)], fs.env)
    assert out.returncode == 2 and "(c -> c)" in out.stderr
    shown = json.loads(run(["show", "assets", "--format", "json"], fs.env).stdout)
    assert shown == []
