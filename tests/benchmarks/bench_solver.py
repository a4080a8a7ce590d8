"""Scheduling benchmark: highspy path vs our pyomo path vs a plain pyomo model.

Run: ``.venv/bin/python tests/benchmarks/bench_solver.py [--quick]``

All three solve the same instances (``solvers.examples``) in one run, side by
side; medians over repeats. "plain pyomo" is the model written the usual way
(pyomo ``Var``/``Constraint`` rules over index sets, solved with appsi_highs).
Build = model construction (ours: formulation, arrays, hand-over to HiGHS;
pyomo: the ConcreteModel); solve = the solver call (for pyomo this includes its
translation into HiGHS). Also: 1 battery x 192 steps, JSON in to JSON out,
in-process. Checks the targets and prints PASS/FAIL per target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import pyomo.environ as pyo

from schemas.flex_problem import SiteProblem
from schemas.flex_request import parse_site_problem
from solvers import schedule
from solvers.examples import battery_problem, battery_request, ev_fleet_problem


def plain_pyomo(problem: SiteProblem) -> tuple[float, float, float]:
    """Build and solve the storage site LP the usual pyomo way; return build, solve, cost."""
    t0 = time.perf_counter()
    n, dt = problem.grid.n, problem.grid.dt_hours
    devs = problem.devices
    m = pyo.ConcreteModel()
    m.D = pyo.RangeSet(0, len(devs) - 1)
    m.T = pyo.RangeSet(0, n - 1)
    m.B = pyo.RangeSet(0, n)

    def cap(value: float) -> float | None:
        return float(value) if np.isfinite(value) else None

    m.pc = pyo.Var(m.D, m.T, bounds=lambda m, d, t: (0, cap(devs[d].consumption_capacity[t])))
    m.pd = pyo.Var(m.D, m.T, bounds=lambda m, d, t: (0, cap(devs[d].production_capacity[t])))

    def soc_bounds(m: pyo.ConcreteModel, d: int, k: int) -> tuple:
        dev = devs[d]
        if k == 0:
            return (dev.soc_at_start, dev.soc_at_start)
        return (cap(dev.soc_min[k]), cap(dev.soc_max[k]))

    m.soc = pyo.Var(m.D, m.B, bounds=soc_bounds)
    site_cap = problem.site_power_capacity
    m.gc = pyo.Var(
        m.T, bounds=lambda m, t: (0, cap(site_cap[t]) if not np.isnan(site_cap[t]) else None)
    )
    m.gp = pyo.Var(
        m.T, bounds=lambda m, t: (0, cap(site_cap[t]) if not np.isnan(site_cap[t]) else None)
    )

    def dynamics(m: pyo.ConcreteModel, d: int, t: int) -> object:
        dev = devs[d]
        e = dev.storage_efficiency[t]
        b = 1.0 if e == 1 else (e - 1) / np.log(e)
        change = (
            m.pc[d, t] * dev.charging_efficiency[t]
            - m.pd[d, t] / dev.discharging_efficiency[t]
            + dev.soc_gain[t]
            - dev.soc_usage[t]
        ) * dt
        return m.soc[d, t + 1] == e * m.soc[d, t] + b * change

    m.dynamics = pyo.Constraint(m.D, m.T, rule=dynamics)

    def minima(m: pyo.ConcreteModel, d: int, k: int) -> object:
        v = devs[d].soc_minima[k]
        return pyo.Constraint.Skip if np.isnan(v) else m.soc[d, k] >= v

    m.minima = pyo.Constraint(m.D, m.B, rule=minima)

    def balance(m: pyo.ConcreteModel, t: int) -> object:
        return (
            sum(m.pc[d, t] - m.pd[d, t] for d in m.D) + problem.inflexible_power[t]
            == m.gc[t] - m.gp[t]
        )

    m.balance = pyo.Constraint(m.T, rule=balance)
    cp, pp = problem.consumption_price, problem.production_price
    m.cost = pyo.Objective(expr=sum(dt * (cp[t] * m.gc[t] - pp[t] * m.gp[t]) for t in m.T))
    t1 = time.perf_counter()
    res = pyo.SolverFactory("appsi_highs").solve(m)
    assert res.solver.termination_condition == pyo.TerminationCondition.optimal
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, float(pyo.value(m.cost))


def measure(
    fn: Callable[[], tuple[float, float, float]], repeats: int
) -> tuple[float, float, float, float]:
    """Medians of build, solve and total seconds, and the last cost."""
    rows = [fn() for _ in range(repeats)]
    build = statistics.median(r[0] for r in rows)
    solve = statistics.median(r[1] for r in rows)
    total = statistics.median(r[0] + r[1] for r in rows)
    return build, solve, total, rows[-1][2]


def ours(problem: SiteProblem, solver: str) -> Callable[[], tuple[float, float, float]]:
    """One run of ``solvers.schedule``: build (formulation + hand-over), solve, cost."""

    def run() -> tuple[float, float, float]:
        t0 = time.perf_counter()
        r = schedule(problem, solver=solver)
        total = time.perf_counter() - t0
        assert r.status.value == "optimal", r.message
        solve = r.timings["solve"]
        return total - solve, solve, r.costs.total

    return run


def json_roundtrip(n: int, repeats: int) -> float:
    """Median seconds for JSON text in to JSON text out, 1 battery x ``n`` steps."""
    text = json.dumps(battery_request(n))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        req = json.loads(text)
        problem = parse_site_problem(
            req["flex_model"], req["flex_context"], req["start"], req["duration"], req["resolution"]
        )
        out = json.dumps(schedule(problem).to_json("kW"))
        times.append(time.perf_counter() - t0)
        assert '"status": "optimal"' in out
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Run the cases, print the table and the targets; exit 1 if a target fails."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller fleet for pyomo")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else 7
    cases: list[tuple[str, SiteProblem, int]] = [
        (f"battery x {n}", battery_problem(n), reps if n < 8760 else max(1, reps // 3))
        for n in (96, 672, 2016, 8760)
    ] + [
        (f"{k} EV x 192", ev_fleet_problem(k, 192), reps if k < 100 else max(1, reps // 3))
        for k in (1, 10, 100)
    ]
    schedule(battery_problem(96))  # warm-up: imports and the first HiGHS instance
    schedule(battery_problem(96), solver="pyomo:appsi_highs")

    header = (
        f"{'case':<16} {'path':<14} {'build s':>9} {'solve s':>9} {'total s':>9} "
        f"{'x highspy':>9}  cost"
    )
    print(header)
    print("-" * len(header))
    results: dict[str, dict[str, float]] = {}
    for name, problem, r in cases:
        paths = {
            "highspy": ours(problem, "highs"),
            "our pyomo": ours(problem, "pyomo:appsi_highs"),
            "plain pyomo": lambda p=problem: plain_pyomo(p),
        }
        base = None
        results[name] = {}
        for path, fn in paths.items():
            build, solve, total, cost = measure(fn, r)
            base = base or total
            results[name][path] = total
            print(
                f"{name:<16} {path:<14} {build:9.4f} {solve:9.4f} {total:9.4f} "
                f"{total / base:9.1f}  {cost:.6f}"
            )
        sys.stdout.flush()
    rt = json_roundtrip(192, 31 if not args.quick else 11)
    print(f"\n1 battery x 192, JSON in -> JSON out (in-process): median {rt * 1000:.1f} ms")

    speedup = results["battery x 2016"]["plain pyomo"] / results["battery x 2016"]["highspy"]
    targets = [
        ("1 battery x 192 JSON->JSON < 30 ms", rt < 0.030, f"{rt * 1000:.1f} ms"),
        (
            "100 EVs x 192 (highspy) < 2 s",
            results["100 EV x 192"]["highspy"] < 2.0,
            f"{results['100 EV x 192']['highspy']:.3f} s",
        ),
        (
            "highspy >= 5x faster than plain pyomo at 2016",
            speedup >= 5,
            f"{speedup:.1f}x",
        ),
    ]
    print()
    ok = True
    for label, passed, value in targets:
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'}  {label}: {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
