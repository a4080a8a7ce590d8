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
