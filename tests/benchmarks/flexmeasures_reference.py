"""FlexMeasures' own ``device_scheduler`` on our benchmark problems, for side-by-side figures.

FlexMeasures is never a dependency of the project: it is installed from PyPI
into its own virtual environment, ``data/fm-env`` (made on first use), and run
there in a subprocess. This module is both halves:

- in our interpreter, ``flexmeasures_times(problem, repeats)`` translates a
  ``SiteProblem`` of storage devices into ``device_scheduler``'s inputs (plain
  JSON), runs the other half and returns its figures;
- run as a script with FlexMeasures' interpreter, it reads those inputs from
  stdin, builds the DataFrames and commitments FlexMeasures' storage scheduler
  would build, solves them in a bare Flask application context with its
  default solver settings (the direct HiGHS back end, gaps 0), and prints the
  status, seconds and cost of each run as JSON.

Translation, in FlexMeasures' own terms: power in kW; stock in kW x steps (the
storage scheduler's unit: energy divided by the step length), bounded relative
to the initial stock, which is the SOC at the start (losses apply to the whole
stock); ``derivative up/down efficiency`` the charging and discharging
efficiencies; ``efficiency`` the storage efficiency per step; ``stock delta``
gain minus usage; SOC bounds at boundary ``k + 1`` go to step ``k``. Energy
prices become one flow commitment with quantity 0 and deviation prices per kW
per step, as ``StorageScheduler`` does; the connection is an EMS constraint;
inflexible load is a device whose power is fixed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
FM_ENV = REPO / "data" / "fm-env"
FM_VERSION = "1.0.1"
#: Seconds per FlexMeasures solve (its HiGHS options take a ``time_limit``).
FM_TIME_LIMIT = 60.0


def _finite(values: Any) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in values]


def to_device_scheduler_input(problem: Any) -> dict[str, Any]:
    """``device_scheduler``'s inputs for a ``SiteProblem`` of storage devices, as plain JSON."""
    import numpy as np

    from schemas.flex_problem import StorageDevice

    n, dt = problem.grid.n, problem.grid.dt_hours
    devices, initial = [], []
    for dev in problem.devices:
        if not isinstance(dev, StorageDevice):
            raise TypeError(f"{dev.name}: only storage devices are translated")
        lo = np.fmax(dev.soc_min[1:], np.nan_to_num(dev.soc_minima[1:], nan=-np.inf))
        hi = np.fmin(dev.soc_max[1:], np.nan_to_num(dev.soc_maxima[1:], nan=np.inf))
        targets = dev.soc_targets[1:]
        lo = np.where(np.isnan(targets), lo, targets)
        hi = np.where(np.isnan(targets), hi, targets)
        up = np.minimum(dev.consumption_capacity, dev.power_capacity)
        down = np.minimum(dev.production_capacity, dev.power_capacity)
        devices.append(
            {
                "min": _finite((lo - dev.soc_at_start) / dt),
                "max": _finite((hi - dev.soc_at_start) / dt),
                "derivative max": _finite(up),
                "derivative min": _finite(-down),
                "derivative up efficiency": _finite(dev.charging_efficiency),
                "derivative down efficiency": _finite(dev.discharging_efficiency),
                "efficiency": _finite(dev.storage_efficiency),
                "stock delta": _finite(dev.soc_gain - dev.soc_usage),
            }
        )
        initial.append(dev.soc_at_start / dt)
    inflexible = np.asarray(problem.inflexible_power, dtype=float)
    if np.any(inflexible != 0):
        devices.append({"derivative equals": _finite(inflexible)})
        initial.append(0.0)
    cap = np.asarray(problem.site_power_capacity, dtype=float)
    return {
        "start": problem.grid.start.isoformat(),
        "resolution_minutes": dt * 60,
        "n": n,
        "devices": devices,
        "ems_max": _finite(np.where(np.isnan(cap), np.inf, cap)),
        "ems_min": _finite(np.where(np.isnan(cap), -np.inf, -cap)),
        "up_price": _finite(problem.consumption_price * dt),
        "down_price": _finite(problem.production_price * dt),
        "initial_stock": initial,
    }


def ensure_env() -> Path:
    """FlexMeasures' interpreter in ``data/fm-env``, installing it from PyPI if need be."""
    python = FM_ENV / "bin" / "python"
    probe = [str(python), "-c", "import flexmeasures.data.models.planning.linear_optimization"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(f"installing flexmeasures=={FM_VERSION} into {FM_ENV} (once) ...", file=sys.stderr)
    venv.create(FM_ENV, with_pip=True, clear=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"flexmeasures=={FM_VERSION}"], check=True
    )
    return python


def flexmeasures_times(problem: Any, repeats: int) -> dict[str, Any]:
    """Status, median seconds and cost of FlexMeasures' ``device_scheduler`` on ``problem``."""
    python = ensure_env()
    payload = json.dumps({"repeats": repeats, "problem": to_device_scheduler_input(problem)})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(python), __file__],
        input=payload,
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=repeats * (FM_TIME_LIMIT + 60) + 120,
    )
    runs = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = sorted(r["seconds"] for r in runs)
    return {
        "status": runs[-1]["status"],
        "seconds": seconds[len(seconds) // 2],
        "cost": runs[-1]["cost"],
    }


def _solve_in_flexmeasures(data: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - fm-env
    """One ``device_scheduler`` run; only imported names of FlexMeasures' interpreter here."""
    import pandas as pd
    from flask import Flask
    from flexmeasures.data.models.planning import FlowCommitment
    from flexmeasures.data.models.planning.linear_optimization import device_scheduler

    n = data["n"]
    resolution = pd.Timedelta(minutes=data["resolution_minutes"])
    index = pd.date_range(data["start"], periods=n, freq=resolution)
    columns = [
        "min",
        "max",
        "equals",
        "derivative min",
        "derivative max",
        "derivative equals",
        "derivative down efficiency",
        "derivative up efficiency",
        "efficiency",
        "stock delta",
    ]
    devices = []
    for spec in data["devices"]:
        frame = pd.DataFrame(index=index, columns=columns, dtype=float)
        frame["stock delta"] = 0.0
        for key, values in spec.items():
            frame[key] = [math.nan if v is None else v for v in values]
        if "derivative equals" in spec:
            frame["min"], frame["max"] = -math.inf, math.inf
        devices.append(frame.fillna({"min": -math.inf, "max": math.inf}))
    ems = pd.DataFrame(
        {
            "derivative max": [math.inf if v is None else v for v in data["ems_max"]],
            "derivative min": [-math.inf if v is None else v for v in data["ems_min"]],
        },
        index=index,
    )
    prices = FlowCommitment(
        name="energy",
        index=index,
        quantity=pd.Series(0.0, index=index),
        upwards_deviation_price=pd.Series(data["up_price"], index=index),
        downwards_deviation_price=pd.Series(data["down_price"], index=index),
    )
    app = Flask("flexmeasures-reference")
    app.config.update(
        LOGGING_LEVEL="INFO",
        FLEXMEASURES_LP_SOLVER="highspy",
        FLEXMEASURES_LP_SOLVER_OPTIONS={"time_limit": FM_TIME_LIMIT},
    )
    with app.app_context():
        t0 = time.perf_counter()
        _, cost, results, _ = device_scheduler(
            devices, ems, commitments=[prices], initial_stock=data["initial_stock"]
        )
        seconds = time.perf_counter() - t0
    status = str(results.solver.termination_condition)
    return {"status": status, "seconds": seconds, "cost": float(cost)}


def main() -> int:  # pragma: no cover - runs in FlexMeasures' interpreter
    """Read the inputs from stdin, run them ``repeats`` times, print the runs as JSON."""
    request = json.loads(sys.stdin.read())
    runs = [_solve_in_flexmeasures(request["problem"]) for _ in range(request["repeats"])]
    print(json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
