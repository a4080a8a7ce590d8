"""`flexstream show beliefs` on the real embedded engine: without a worker, and through one."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.clickhouse import Store
from schemas import serde
from schemas.beliefs import Sensor, validate

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# A quote in the name: the command binds it as a parameter, it never becomes SQL.
ROOF = Sensor(name="pv'roof", unit="kW", event_resolution="PT15M", timezone="Europe/Amsterdam")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def insert_history(data_dir: Path) -> None:
    """Beliefs around the switch to summer time (2026-03-29 01:00Z) in Amsterdam.

    Two sources: a forecast made the day before and corrected six hours later
    for one event, and the meter's readings after the events.
    """
    beliefs = [
        ("forecast", t("2026-03-29 00:45"), [1.5, 2.0], t("2026-03-28 12:00")),
        ("forecast", t("2026-03-29 01:00"), [2.5], t("2026-03-28 18:00")),  # corrects 2.0
        ("meter", t("2026-03-29 00:45"), [1.25, 2.25, 3.0], t("2026-03-29 01:30")),
    ]
    store = Store.open(None, "flexstream", data_dir)
    try:
        store.upsert_sensors([ROOF])
        for source, start, values, belief_time in beliefs:
            rec = {
                "sensor": ROOF.name,
                "start": start,
                "resolution_ms": 900_000,
                "values": values,
                "belief_time": belief_time,
                "source": source,
            }
            kind, decoded = serde.decode(serde.encode("BeliefBatch", rec))
            cols, rejected = validate(kind, decoded, {ROOF.name: ROOF}, t("2030-01-01 00:00"))
            assert rejected == []
            store.insert_beliefs(cols.to_arrow())
    finally:
        store.close()


def show(fs, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", "show", "beliefs", *options],
        env=fs.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


CSV = """\
sensor,event_start,belief_time,source,event_value,unit
pv'roof,2026-03-29T01:45:00+01:00,2026-03-28T13:00:00+01:00,forecast,1.5,kW
pv'roof,2026-03-29T01:45:00+01:00,2026-03-29T03:30:00+02:00,meter,1.25,kW
pv'roof,2026-03-29T03:00:00+02:00,2026-03-28T19:00:00+01:00,forecast,2.5,kW
pv'roof,2026-03-29T03:00:00+02:00,2026-03-29T03:30:00+02:00,meter,2.25,kW
pv'roof,2026-03-29T03:15:00+02:00,2026-03-29T03:30:00+02:00,meter,3.0,kW
"""

# Rich centres the title; trailing blanks are left out here.
TABLE = """\
                    beliefs of pv'roof (kW, Europe/Amsterdam)
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━┓
┃ event_start               ┃ belief_time               ┃ source   ┃ value (kW) ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━┩
│ 2026-03-29T01:45:00+01:00 │ 2026-03-28T13:00:00+01:00 │ forecast │ 1.5        │
│ 2026-03-29T01:45:00+01:00 │ 2026-03-29T03:30:00+02:00 │ meter    │ 1.25       │
│ 2026-03-29T03:00:00+02:00 │ 2026-03-28T19:00:00+01:00 │ forecast │ 2.5        │
│ 2026-03-29T03:00:00+02:00 │ 2026-03-29T03:30:00+02:00 │ meter    │ 2.25       │
│ 2026-03-29T03:15:00+02:00 │ 2026-03-29T03:30:00+02:00 │ meter    │ 3.0        │
└───────────────────────────┴───────────────────────────┴──────────┴────────────┘
"""

FORECAST_AFTER_THE_SWITCH = [
    {
        "sensor": "pv'roof",
        "event_start": "2026-03-29T03:00:00+02:00",
        "belief_time": "2026-03-28T19:00:00+01:00",
        "source": "forecast",
        "event_value": 2.5,
        "unit": "kW",
    }
]

BEFORE_THE_SWITCH = """\
sensor,event_start,belief_time,source,event_value,unit
pv'roof,2026-03-29T01:45:00+01:00,2026-03-28T13:00:00+01:00,forecast,1.5,kW
pv'roof,2026-03-29T01:45:00+01:00,2026-03-29T03:30:00+02:00,meter,1.25,kW
"""


def check_outputs(fs) -> None:
    res = show(fs, "--sensor", ROOF.name, "--format", "csv")
    assert (res.returncode, res.stdout, res.stderr) == (0, CSV, "")
    res = show(fs, "--sensor", ROOF.name)
    assert res.returncode == 0, res.stderr
    assert [line.rstrip() for line in res.stdout.splitlines()] == TABLE.splitlines()
    res = show(
        fs,
        *("--sensor", ROOF.name, "--source", "forecast"),
        *("--start", "2026-03-29T03:00+02:00", "--format", "json"),
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout) == FORECAST_AFTER_THE_SWITCH
    res = show(fs, "--sensor", ROOF.name, "--end", "2026-03-29T01:00Z", "--format", "csv")
    assert (res.returncode, res.stdout) == (0, BEFORE_THE_SWITCH)
    res = show(fs, "--sensor", "pv' OR 1=1 --", "--format", "csv")
    assert res.returncode == 2
    assert res.stderr.startswith('error: --sensor: unknown sensor "pv\' OR 1=1 --"')


def test_show_beliefs_prints_the_current_belief_per_event_and_source(fs):
    insert_history(fs.data_dir)
    check_outputs(fs)  # no worker: the command opens the embedded store itself
    fs.start_worker()
    assert (fs.data_dir / "worker.json").exists()
    check_outputs(fs)  # the worker owns the store: through its /sql/ endpoint
