"""FlexMeasures' own ``device_scheduler`` on our problems, for side-by-side figures.

FlexMeasures is never a dependency of the project: it is installed from PyPI
into its own virtual environment, ``data/fm-env`` (made on first use), and run
there in a subprocess. This module is both halves:

- in our interpreter, ``flexmeasures_times(problem, repeats)`` translates a
  ``SiteProblem`` into ``device_scheduler``'s inputs (plain JSON), runs the
  other half and returns its figures;
- run as a script with FlexMeasures' interpreter, it reads those inputs from
  stdin, builds the DataFrames, FlowCommitments, EMS constraint groups and power
  bands FlexMeasures' storage scheduler would build, solves them in a bare Flask
  application context with its default solver settings (the direct HiGHS back
  end, gaps 0), and prints the status, seconds and cost of each run as JSON.

Translation, in FlexMeasures' own terms: power in kW; stock in kW x steps (the
storage scheduler's unit: energy divided by the step length), bounded relative
to the initial stock, which is the SOC at the start (losses apply to the whole
stock); ``derivative up/down efficiency`` the charging and discharging
efficiencies; ``efficiency`` the storage efficiency per step; ``stock delta``
gain minus usage; SOC bounds at boundary ``k + 1`` go to step ``k`` (soft ones
as hard: the optima agree whenever ours breaches none). Energy prices become one
flow commitment with quantity 0 and deviation prices per kW per step, as
``StorageScheduler`` does; inflexible load is a device whose power is fixed.

- Site connection: an EMS constraint over every device (``site-power-capacity``,
  and the directional capacities where unpriced).
- Peak pricing: a flow commitment of ``_type="any"`` with the peak reached as
  quantity (production: negated, priced downwards), grouped by FlexMeasures
  itself where price or baseline change, as ``StorageScheduler`` does.
- Commitments: per-step flow commitments on the site (uncommitted steps priced 0).
- Priced site or group capacities: the "any" and "all" breach commitments of
  ``StorageScheduler``, with two differences made equal: the "all" commitment
  gets our price per kW per step (FlexMeasures charges ``price x step hours``),
  and the "any" commitment is one group per distinct price (FlexMeasures would
  also split where the capacity changes; ours charges one peak per window).
- Device groups: an EMS constraint over the members (``ems_constraint_groups``);
  the inflexible members' power, a constant, shifts its bounds (and the breach
  commitments' quantities) instead of entering as devices.
- Operation modes: ``device_power_bands``.
- Processes: ``INFLEXIBLE`` and ``MAX`` ones as fixed power; ``BREAKABLE`` ones
  (and one-step ``SHIFTABLE`` ones) as a stock with bands ``{0}`` and
  ``{power}`` that must reach ``power x duration``; a contiguous run of several
  steps cannot be expressed (``TypeError``, as for priced device capacities).
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


def _floats(values: Any) -> list[float]:
    """Plain floats (JSON writes ``inf`` and ``nan`` as ``Infinity`` and ``NaN``)."""
    return [float(v) for v in values]


def _finite(values: Any) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in values]


def _storage_spec(dev: Any, dt: float) -> dict[str, Any]:
    """A storage device's columns (stock in kW x steps, relative to the initial stock)."""
    import numpy as np

    lo = np.fmax(dev.soc_min[1:], np.nan_to_num(dev.soc_minima[1:], nan=-np.inf))
    hi = np.fmin(dev.soc_max[1:], np.nan_to_num(dev.soc_maxima[1:], nan=np.inf))
    targets = dev.soc_targets[1:]
    lo = np.where(np.isnan(targets), lo, targets)
    hi = np.where(np.isnan(targets), hi, targets)
    up = np.minimum(dev.consumption_capacity, dev.power_capacity)
    down = np.minimum(dev.production_capacity, dev.power_capacity)
    return {
        "min": _finite((lo - dev.soc_at_start) / dt),
        "max": _finite((hi - dev.soc_at_start) / dt),
        "derivative max": _finite(up),
        "derivative min": _finite(-down),
        "derivative up efficiency": _finite(dev.charging_efficiency),
        "derivative down efficiency": _finite(dev.discharging_efficiency),
        "efficiency": _finite(dev.storage_efficiency),
        "stock delta": _finite(dev.soc_gain - dev.soc_usage),
    }


def _process_spec(dev: Any, price: Any) -> tuple[dict[str, Any], list[list[float]] | None]:
    """A process's columns and power bands: a stock that must reach ``power x duration``.

    Placed without optimisation (``INFLEXIBLE``, or ``MAX`` sense), its profile is
    fixed as ours places it. ``BREAKABLE`` (and ``SHIFTABLE`` of one step, the same
    thing) is a stock device with bands ``{0}`` and ``{power}`` whose stock must
    reach ``power x duration`` by the end: any ``duration`` allowed steps.
    ``device_scheduler`` cannot express a contiguous run of several steps.
    """
    import numpy as np

    from schemas.flex_problem import OptimizationSense, ProcessType
    from solvers.process import fixed_profile

    k, n = dev.duration_steps, dev.n
    optimised = dev.process_type is not ProcessType.INFLEXIBLE
    if not optimised or dev.sense is OptimizationSense.MAX:
        on = fixed_profile(dev, price)
        if on is None:
            raise TypeError(f"{dev.name}: the process has no placement in the window")
        return {"derivative equals": _finite(dev.power * on)}, None
    if dev.process_type is ProcessType.SHIFTABLE and k > 1:
        raise TypeError(
            f"{dev.name}: a SHIFTABLE process of {k} steps runs contiguously, which "
            "device_scheduler cannot express (no constraint couples consecutive steps)"
        )
    final = np.full(n, -np.inf)
    final[-1] = dev.power * k
    return {
        "min": _finite(final),
        "max": _finite(np.full(n, dev.power * k)),
        "derivative max": _finite(np.where(dev.allowed, dev.power, 0.0)),
        "derivative min": _finite(np.zeros(n)),
    }, [[0.0, 0.0], [dev.power, dev.power]]


def _breach_groups(quantity: Any, price: Any) -> list[int]:
    """Commitment groups for a breach peak: one per distinct price over the capped steps.

    Ours charges ``max_t price[t] * breach[t]`` once over the window; with one
    price that is one group (FlexMeasures' own ``_type="any"`` would also split
    where the capacity changes). Uncapped steps get groups of their own, priced 0.
    """
    import numpy as np

    groups, ids = [], {}
    for t, (q, p) in enumerate(zip(quantity, price, strict=True)):
        key = float(p) if np.isfinite(q) else ("free", t)
        groups.append(ids.setdefault(key, len(ids)))
    return groups


def _breach_commitments(
    name: str,
    devices: list[int] | None,
    cap: Any,
    price: Any,
    offset: Any,
    side: str,
    native_hours: float | None = None,
) -> list[dict[str, Any]]:
    """A priced directional capacity as FlexMeasures models it: an "any" and an "all" commitment.

    ``offset`` is the constant (inflexible) power counted in the flow but not
    among ``devices``. Ours prices the per-step breach at ``price`` per kW per step
    (FlexMeasures: ``price x step hours``, a price per kW per hour), so the "all"
    commitment gets ``price`` itself: the same objective. With ``native_hours``
    (the step length) it gets FlexMeasures' own ``price x native_hours``, and the
    "any" commitment FlexMeasures' own grouping (runs of constant capacity and price).
    """
    import numpy as np

    cap = np.asarray(cap, dtype=float)
    price = np.where(np.isfinite(cap), np.asarray(price, dtype=float), 0.0)
    if side == "consumption":
        quantity, key, signed = cap - offset, "up", price
    else:
        quantity, key, signed = -cap - offset, "down", -price
    common = {"devices": devices, "quantity": _floats(quantity)}
    grouping = {"any": True} if native_hours else {"group": _breach_groups(quantity, price)}
    per_step = signed * (native_hours or 1.0)
    return [
        {**common, "name": f"{name} any {side} breach", key: _floats(signed), **grouping},
        {**common, "name": f"{name} all {side} breaches", key: _floats(per_step)},
    ]


def to_device_scheduler_input(problem: Any, native_breaches: bool = False) -> dict[str, Any]:
    """``device_scheduler``'s inputs for a ``SiteProblem``, as plain JSON.

    Raises ``TypeError`` naming what cannot be translated. Soft SOC bounds go in
    as hard ones (equal optima whenever ours breaches none of them), listed in
    ``notes``. ``native_breaches`` prices capacity breaches as FlexMeasures
    means its breach prices (see ``_breach_commitments``) instead of as ours.
    """
    import numpy as np

    from schemas.flex_problem import ProcessDevice, StorageDevice

    n, dt = problem.grid.n, problem.grid.dt_hours
    native = dt if native_breaches else None
    bp = problem.breach_prices
    if bp.device_consumption is not None or bp.device_production is not None:
        raise TypeError("priced device capacity breaches are not translated")
    devices, initial, bands, notes = [], [], [], []
    index = {}
    for dev in problem.devices:
        index[dev.name] = len(devices)
        if isinstance(dev, StorageDevice):
            devices.append(_storage_spec(dev, dt))
            initial.append(dev.soc_at_start / dt)
            bands.append([list(b) for b in dev.operation_modes] or None)
            soft = np.isfinite(np.concatenate([dev.soc_minima, dev.soc_maxima, dev.soc_targets]))
            if soft.any() and (bp.soc_minima is not None or bp.soc_maxima is not None):
                notes.append(f"{dev.name}: soft SOC bounds as hard")
        elif isinstance(dev, ProcessDevice):
            spec, band = _process_spec(dev, problem.consumption_price)
            devices.append(spec)
            initial.append(0.0)
            bands.append(band)
        else:
            raise TypeError(f"{dev.name}: a {type(dev).__name__} is not translated")
    inflexible = np.asarray(problem.inflexible_power, dtype=float)
    if np.any(inflexible != 0):
        devices.append({"derivative equals": _finite(inflexible)})
        initial.append(0.0)
        bands.append(None)
    everyone = list(range(len(devices)))
    zero = np.zeros(n)

    def hard(cap: Any, price: Any) -> Any:
        return np.full(n, np.inf) if price is not None else np.nan_to_num(cap, nan=np.inf)

    power = np.nan_to_num(problem.site_power_capacity, nan=np.inf)
    up = np.fmin(power, hard(problem.site_consumption_capacity, bp.site_consumption))
    down = np.fmin(power, hard(problem.site_production_capacity, bp.site_production))
    ems = [{"devices": everyone, "max": _floats(up), "min": _floats(-down)}]
    commitments: list[dict[str, Any]] = [
        {
            "name": "energy",
            "devices": None,
            "quantity": [0.0] * n,
            "up": _floats(problem.consumption_price * dt),
            "down": _floats(problem.production_price * dt),
        }
    ]
    for side in ("consumption", "production"):
        price = getattr(bp, f"site_{side}")
        if price is not None:
            cap = getattr(problem, f"site_{side}_capacity")
            commitments += _breach_commitments("site", None, cap, price, zero, side, native)
    for side, sign in (("consumption", 1.0), ("production", -1.0)):
        price = getattr(problem, f"peak_{side}_price")
        if price is not None:
            peak = getattr(problem, f"peak_{side}")
            base = np.where(np.isnan(peak), np.inf, peak)
            priced = np.nan_to_num(price, nan=0.0)
            key = "up" if side == "consumption" else "down"
            commitments.append(
                {"name": f"{side} peak", "devices": None, "quantity": _floats(sign * base),
                 key: _floats(sign * priced), "any": True}
            )  # fmt: skip
    for c in problem.commitments:
        on = np.isfinite(c.baseline)
        commitments.append(
            {
                "name": c.name,
                "devices": None,
                "quantity": _floats(c.baseline),
                "up": _floats(np.where(on, c.up_price, 0.0)),
                "down": _floats(np.where(on, c.down_price, 0.0)),
            }
        )
    for g in problem.groups:
        members = sorted(index[m] for m in g.members)
        offset = np.asarray(g.inflexible_power, dtype=float)
        cap = np.asarray(g.power_capacity, dtype=float)
        up = np.fmin(cap, hard(g.consumption_capacity, g.consumption_breach_price))
        down = np.fmin(cap, hard(g.production_capacity, g.production_breach_price))
        ems.append(
            {"devices": members, "max": _floats(up - offset),
             "min": _floats(-down - offset)}
        )  # fmt: skip
        for side in ("consumption", "production"):
            price = getattr(g, f"{side}_breach_price")
            if price is not None:
                cap = getattr(g, f"{side}_capacity")
                name = f"group {g.name}"
                commitments += _breach_commitments(name, members, cap, price, offset, side, native)
    return {
        "start": problem.grid.start.isoformat(),
        "resolution_minutes": dt * 60,
        "n": n,
        "devices": devices,
        "bands": bands,
        "ems": ems,
        "commitments": commitments,
        "initial_stock": initial,
        "notes": notes,
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


def flexmeasures_times(problem: Any, repeats: int, native_breaches: bool = False) -> dict[str, Any]:
    """Status, median seconds and cost of FlexMeasures' ``device_scheduler`` on ``problem``."""
    python = ensure_env()
    data = to_device_scheduler_input(problem, native_breaches)
    payload = json.dumps({"repeats": repeats, "problem": data})
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
        "notes": data["notes"],
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
    ems = [
        pd.DataFrame({"derivative max": e["max"], "derivative min": e["min"]}, index=index)
        for e in data["ems"]
    ]
    commitments = []
    for spec in data["commitments"]:
        kwargs: dict[str, Any] = {}
        if spec["devices"] is not None:
            kwargs["device"] = pd.Series([tuple(spec["devices"])] * n, index=index)
            kwargs["device_group"] = spec["name"]
        c = FlowCommitment(
            name=spec["name"],
            index=index,
            quantity=pd.Series(spec["quantity"], index=index, dtype=float),
            upwards_deviation_price=pd.Series(spec.get("up", 0.0), index=index, dtype=float),
            downwards_deviation_price=pd.Series(spec.get("down", 0.0), index=index, dtype=float),
            _type="any" if spec.get("any") or "group" in spec else "each",
            **kwargs,
        )
        if "group" in spec:
            c.group = pd.Series(spec["group"], index=index, name="group")
        commitments.append(c)
    app = Flask("flexmeasures-reference")
    app.config.update(
        LOGGING_LEVEL="INFO",
        FLEXMEASURES_LP_SOLVER="highspy",
        FLEXMEASURES_LP_SOLVER_OPTIONS={"time_limit": FM_TIME_LIMIT},
    )
    bands = data.get("bands")
    with app.app_context():
        t0 = time.perf_counter()
        try:
            _, cost, results, _ = device_scheduler(
                devices,
                ems,
                commitments=commitments,
                initial_stock=data["initial_stock"],
                ems_constraint_groups=[e["devices"] for e in data["ems"]],
                device_power_bands=bands if any(b is not None for b in bands or []) else None,
            )
        except Exception as exc:  # noqa: BLE001 - reported as the run's status
            seconds = time.perf_counter() - t0
            return {"status": f"error: {exc}"[:200], "seconds": seconds, "cost": math.nan}
        seconds = time.perf_counter() - t0
    status = str(results.solver.termination_condition)
    cost = float(cost) if cost is not None else math.nan
    return {"status": status, "seconds": seconds, "cost": cost}


def main() -> int:  # pragma: no cover - runs in FlexMeasures' interpreter
    """Read the inputs from stdin, run them ``repeats`` times, print the runs as JSON."""
    request = json.loads(sys.stdin.read())
    runs = [_solve_in_flexmeasures(request["problem"]) for _ in range(request["repeats"])]
    print(json.dumps(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
