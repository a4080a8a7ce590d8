"""Readings in -> forecasts on the topic and in ClickHouse -> scores as measurements arrive."""

from __future__ import annotations

import json
import math
import urllib.request
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
import yaml

from schemas import serde
from tests.integration.conftest import batch, wait_for
from tests.integration.test_cli import run

pytestmark = pytest.mark.integration

STEP = timedelta(minutes=15)
SOURCE = "forecaster:load-ahead"
FORECASTER = {
    "name": "load-ahead",
    "sensor": "site-load",
    "holidays-country": "NL",
    "train-period": "P7D",
    "max-forecast-horizon": "PT6H",
    "retrain-frequency": "P1D",
    "forecast-frequency": "PT1H",
    "debounce": "PT1S",
    "quantiles": [0.1, 0.5, 0.9],
}


def daily_load(start: datetime, n: int) -> list[float]:
    hours = (np.arange(n) * 0.25 + (start.hour + start.minute / 60)) % 24
    rng = np.random.default_rng(5)
    return list(np.round(1.0 + 2.0 * np.exp(-((hours - 18) ** 2) / 4) + rng.normal(0, 0.05, n), 3))


def register(fs, tmp_path) -> None:
    sensors = tmp_path / "site.yaml"
    sensors.write_text(
        yaml.safe_dump([{"name": "site-load", "unit": "kW", "event_resolution": "PT15M"}])
    )
    assert run(["add", "sensor", str(sensors)], fs.env).returncode == 0
    file = tmp_path / "forecaster.yaml"
    file.write_text(yaml.safe_dump(FORECASTER))
    out = run(["add", "forecaster", str(file)], fs.env)
    assert out.returncode == 0, out.stderr


def publish_history(fs, now: datetime, days: int = 10) -> datetime:
    """Measurements of the last ``days`` up to the last full quarter hour; returns its end."""
    end = now.replace(second=0, microsecond=0) - timedelta(minutes=now.minute % 15)
    start = end - timedelta(days=days)
    n = days * 96
    values = daily_load(start, n)
    msgs = [
        ("site-load", batch("site-load", start + i * STEP, values[i : i + 480], source="meter"))
        for i in range(0, n, 480)
    ]
    fs.publish("readings.meter", msgs)
    return end


FORECASTS = (
    "SELECT cumulative_probability, count(), uniqExact(belief_time), min(event_start), "
    "max(event_start), min(belief_time) FROM flexstream.beliefs FINAL "
    f"WHERE sensor = 'site-load' AND source = '{SOURCE}' GROUP BY cumulative_probability "
    "ORDER BY cumulative_probability"
)


def test_readings_become_quantile_forecasts_that_are_scored_as_measurements_arrive(fs, tmp_path):
    register(fs, tmp_path)
    fs.start_worker()
    end = publish_history(fs, datetime.now(UTC))
    rows = wait_for(
        lambda: (r := fs.sql(FORECASTS)) and len(r) == 3 and all(x[1] >= 24 for x in r) and r,
        timeout=120,
        what="three quantile forecasts in ClickHouse",
    )
    assert [r[0] for r in rows] == [0.1, 0.5, 0.9]
    for _, _, _, first, _, made in rows:
        # A forecast's events start with the one in progress at its belief time.
        made_at = datetime.fromisoformat(made).replace(tzinfo=UTC)
        assert datetime.fromisoformat(first).replace(tzinfo=UTC) > made_at - STEP
    # The quantiles do not cross, event by event.
    by_q = fs.sql(
        "SELECT event_start, groupArray((cumulative_probability, event_value)) "
        f"FROM flexstream.beliefs FINAL WHERE source = '{SOURCE}' "
        "AND belief_time = (SELECT max(belief_time) FROM flexstream.beliefs "
        f"WHERE source = '{SOURCE}') GROUP BY event_start"
    )
    assert len(by_q) >= 24
    for _, pairs in by_q:
        values = [v for _, v in sorted(pairs)]
        assert values == sorted(values) and all(math.isfinite(v) for v in values)
    # The worker says what each forecaster did.
    with urllib.request.urlopen(f"http://127.0.0.1:{fs.web_port}/forecasters/", timeout=10) as r:
        stats = json.loads(r.read())["load-ahead"]
    assert stats["trainings"] >= 1 and stats["forecasts"] >= 1 and stats["error"] is None
    # The forecasts went through the readings topic as BeliefBatch messages.
    msgs = fs.consume_all("readings.meter", expect=100, timeout=30)
    decoded = [serde.decode(m.value())[1] for m in msgs if m.key() == b"site-load"]
    ours = [d for d in decoded if d.get("source") == SOURCE]
    assert {d["cumulative_probability"] for d in ours} == {0.1, 0.5, 0.9}
    assert all(d["start"] > d["belief_time"] - STEP for d in ours)

    # Measurements of the first forecast hour arrive (believed now): they are scored.
    first = datetime.fromisoformat(rows[1][3]).replace(tzinfo=UTC)
    measured = daily_load(first, 4)
    fs.publish(
        "readings.meter",
        [
            (
                "site-load",
                batch("site-load", first, measured, source="meter", belief_time=datetime.now(UTC)),
            )
        ],
    )
    scores = wait_for(
        lambda: fs.sql(
            "SELECT sum(n), sum(abs_error), sum(naive_abs_error), groupArray(horizon_from) "
            f"FROM flexstream.forecast_scores FINAL WHERE source = '{SOURCE}' HAVING sum(n) > 0"
        ),
        timeout=60,
        what="forecast scores",
    )
    (n, abs_error, naive_error, buckets) = scores[0]
    assert n >= 4 and abs_error >= 0 and naive_error >= 0 and 0 in buckets
    out = run(["show", "forecasts", "--sensor", "site-load", "--format", "json"], fs.env)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed[0]["forecaster"] == "load-ahead" and printed[0]["horizon"] == "0-1 h"
    assert printed[0]["pairs"] >= 4 and "skill" in printed[0] and "pinball 0.5" in printed[0]
    table = run(["show", "forecasts", "--sensor", "site-load"], fs.env)
    assert "skill" in table.stdout and "load-ahead" in table.stdout
    assert end <= first + STEP

    # A walk-forward backtest over the last two days of the history, with its chart.
    chart = tmp_path / "backtest.html"
    args = ["forecast", "backtest", "--forecaster", "load-ahead", "--every", "PT6H"]
    window = ["--start", (end - timedelta(days=2)).isoformat(), "--end", end.isoformat()]
    out = run([*args, *window, "--output", str(chart), "--format", "json"], fs.env)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["forecaster"] == "load-ahead"
    assert [r["horizon"] for r in result["scores"]] == ["0-1 h", "1-6 h"]
    assert sum(r["pairs"] for r in result["scores"]) == 8 * 24
    assert chart.stat().st_size > 10_000 and "vega" in chart.read_text()
    out = run(["forecast", "backtest", "--forecaster", "ghost", *window], fs.env)
    assert out.returncode == 2 and "'ghost' is not registered" in out.stderr

    # Deleted with --purge while the worker runs: the worker purges its forecasts and scores.
    out = run(["delete", "forecaster", "load-ahead", "--purge", "--yes"], fs.env)
    assert out.returncode == 0, out.stderr
    assert "deleted forecaster load-ahead and its" in out.stdout
    gone = "SELECT toUInt32(count()) FROM flexstream.beliefs WHERE source = 'forecaster:load-ahead'"
    assert fs.sql(gone) == [[0]]
    assert fs.sql("SELECT toUInt32(count()) FROM flexstream.forecast_scores") == [[0]]
    assert fs.sql("SELECT toUInt32(count()) > 0 FROM flexstream.beliefs") == [[1]]


def test_a_schedule_uses_the_forecast_where_its_load_has_no_beliefs(fs, tmp_path):
    register(fs, tmp_path)
    devices = tmp_path / "devices.yaml"
    devices.write_text(
        yaml.safe_dump([{"name": "home-bat", "unit": "kW", "event_resolution": "PT15M"}])
    )
    assert run(["add", "sensor", str(devices)], fs.env).returncode == 0
    home = tmp_path / "home.yaml"
    home.write_text(
        yaml.safe_dump(
            {
                "name": "home",
                "flex-context": {
                    "consumption-price": "100 EUR/MWh",
                    "inflexible-device-sensors": [{"sensor": "site-load"}],
                    "site-power-capacity": "20 kW",
                },
                "flex-model": {
                    "sensor": "home-bat",
                    "soc-at-start": "5 kWh",
                    "soc-max": "10 kWh",
                    "power-capacity": "5 kW",
                },
            }
        )
    )
    assert run(["add", "asset", str(home)], fs.env).returncode == 0
    fs.start_worker()
    # Before any reading: the schedule's error names the sensor and the missing span.
    start = datetime.now(UTC)
    start = start.replace(second=0, microsecond=0) + timedelta(minutes=15 - start.minute % 15)
    args = ["add", "schedule", "--asset", "home", "--start", start.isoformat(), "--duration"]
    out = run([*args, "PT2H", "--wait", "--format", "json"], fs.env)
    (failed,) = json.loads(out.stdout)
    assert failed["status"] == "error"
    assert "no beliefs of sensor 'site-load' for 8 of 8 steps" in failed["message"]
    assert "forecasters load-ahead cover no more" in failed["message"]

    publish_history(fs, datetime.now(UTC))
    wait_for(
        lambda: (r := fs.sql(FORECASTS)) and len(r) == 3 and r,
        timeout=120,
        what="forecasts in ClickHouse",
    )
    out = run([*args, "PT2H", "--wait", "--format", "json"], fs.env)
    assert out.returncode == 0, out.stderr
    (answer,) = json.loads(out.stdout)
    assert answer["status"] == "optimal", answer
    assert "from the latest median forecast of forecaster:load-ahead" in answer["message"]
    assert "site-load" in answer["message"] and len(answer["values"]) == 8
