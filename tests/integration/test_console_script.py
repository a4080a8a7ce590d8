"""The installed ``flexstream`` console script runs a command in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

START = "2024-05-01T00:00+00:00"
FLEX_MODEL = [
    {
        "sensor": "bat",
        "soc-at-start": "10 kWh",
        "soc-max": "40 kWh",
        "power-capacity": "10 kW",
        "soc-targets": [{"datetime": "2024-05-01T04:00+00:00", "value": "30 kWh"}],
    },
    {"sensor": "wash", "power": "5 kW", "duration": "PT1H"},
]
FLEX_CONTEXT = {
    "consumption-price": [
        {"start": START, "duration": "PT2H", "value": "50 EUR/MWh"},
        {"start": "2024-05-01T02:00+00:00", "duration": "PT2H", "value": "150 EUR/MWh"},
    ]
}


def test_console_script_schedules(tmp_path):
    fm, fc = tmp_path / "fm.json", tmp_path / "fc.json"
    fm.write_text(json.dumps(FLEX_MODEL))
    fc.write_text(json.dumps(FLEX_CONTEXT))
    exe = Path(sys.executable).parent / "flexstream"
    proc = subprocess.run(
        [str(exe), "schedule", "--flex-model", str(fm), "--flex-context", str(fc)]
        + ["--start", START, "--duration", "PT4H", "--resolution", "PT1H"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "optimal"


def test_console_script_schedules_a_portfolio(tmp_path):
    """Three sites toward one commitment: one JSON object on stdout, one object per site."""
    from solvers.examples import portfolio_request

    document = portfolio_request(3, seed=7)
    path = tmp_path / "portfolio.json"
    path.write_text(json.dumps(document))
    exe = Path(sys.executable).parent / "flexstream"
    proc = subprocess.run(
        [str(exe), "schedule", "--portfolio", str(path), "--unit", "MW"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "optimal" and out["method"] == "joint" and out["unit"] == "MW"
    assert [s["name"] for s in out["sites"]] == ["site-0000", "site-0001", "site-0002"]
    for site in out["sites"]:
        assert [s["sensor"] for s in site["schedules"]] == [
            f"{site['name']}-battery",
            f"{site['name']}-ev",
        ]
        assert all(len(s["values"]) == 96 for s in site["schedules"])
    # The portfolio's net power: every device plus every site's office load (kW -> MW).
    series = [s["values"] for site in out["sites"] for s in site["schedules"]]
    for site in document["sites"]:
        office = site["flex-context"]["inflexible-consumption"]
        series.append([float(seg["value"].split()[0]) / 1000 for seg in office])
    assert out["net-power"] == pytest.approx([sum(v) for v in zip(*series, strict=True)], abs=1e-9)
    assert out["costs"]["total"] == pytest.approx(
        out["costs"]["market"]["total"] + sum(out["costs"]["sites"].values())
    )
