"""The CLI imports only what a command needs: help and light commands load no heavy library.

Each check runs in a fresh interpreter, since this test process has imported
everything already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

#: Libraries that cost seconds to import and that help screens never need.
HEAVY = (
    "faust",
    "pandas",
    "pint",
    "highspy",
    "pyomo",
    "altair",
    "vl_convert",
    "rich.progress",
    "lightgbm",
    "pvlib",
    "scoringrules",
)


def loaded_after(code: str) -> list[str]:
    """The ``HEAVY`` libraries loaded once ``code`` ran in a fresh interpreter."""
    report = f"import json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    probe = f"{code}\n{report}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["--version"],
        ["sql", "--help"],
        ["show", "--help"],
        ["show", "beliefs", "--help"],
        ["add", "sensor", "--help"],
        ["worker", "--help"],
        ["chart", "--help"],
        ["publish", "--help"],
        ["add", "report", "--help"],
        ["add", "forecaster", "--help"],
        ["show", "forecasts", "--help"],
        ["forecast", "backtest", "--help"],
    ],
)
def test_help_loads_no_heavy_library(args):
    code = (
        "import contextlib, io\n"
        "import streams.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    streams.cli.main({args!r}, standalone_mode=False)\n"
    )
    assert loaded_after(code) == []


@pytest.mark.parametrize(
    "module",
    ["streams.sql.access", "streams.runtime", "streams.cli.registry", "connectors.registry"],
)
def test_modules_of_sql_show_and_add_sensor_load_no_faust(module):
    assert "faust" not in loaded_after(f"import {module}")
