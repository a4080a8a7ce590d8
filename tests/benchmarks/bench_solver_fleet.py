"""Fleet benchmark: V2G under a negative-price evening, a battery fleet, long JSON requests.

Run: ``PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_solver_fleet.py [--quick]``

Side by side in one run, medians of 3 (1 with ``--quick``):

- V2G EVs x 192 steps with every evening (18-22 h) at -50 EUR/MWh
  (``solvers.examples.v2g_negative_evening_problem``): status and seconds,
  beside the same schedule with the device-by-device proof switched off (the
  fleet's own MILP, ``solvers.decomposition``), run alternately, and the ratio;
- 100 batteries x 192 steps behind one connection
  (``solvers.examples.battery_fleet_problem``): our highspy path against a plain
  pyomo LP of the same problem (``bench_solver.plain_pyomo``; its total and its
  solver call alone), run alternately so load hits both alike, and the ratios;
- 1 battery x 8760 steps, JSON text in to JSON text out, beside the bare
  ``schedule`` call on the same problem already parsed.

Beside them, FlexMeasures' own ``device_scheduler`` (1.0.1, installed from PyPI
into ``data/fm-env`` on first use, never into the project's environment; see
``flexmeasures_reference``) on the same problems with its default solver
settings and a 60 s time limit, once each (it reaches the limit on the large
ones). ``--skip-flexmeasures`` leaves that column out.

Every solve of ours gets a 30 s time limit; a case that reaches it prints
``time-limit``. ``--skip-v2g`` leaves out the V2G fleets (the slow part).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_solver import json_roundtrip, plain_pyomo  # noqa: E402
from flexmeasures_reference import flexmeasures_times  # noqa: E402

from schemas.flex_request import parse_site_problem  # noqa: E402
from solvers import decomposition, schedule  # noqa: E402
from solvers.examples import (  # noqa: E402
    battery_fleet_problem,
    battery_problem,
    battery_request,
    v2g_negative_evening_problem,
)

TIME_LIMIT = 30.0


def side_by_side(problem: object, repeats: int) -> dict[str, float]:
    """Medians of ours and the plain pyomo LP (total and solver call), run alternately."""
    ours_s, plain_s, plain_solve, costs = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = schedule(problem, time_limit=TIME_LIMIT)
        ours_s.append(time.perf_counter() - t0)
        build, solve, cost = plain_pyomo(problem)
        plain_s.append(build + solve)
        plain_solve.append(solve)
        costs.append((r.costs.total, cost))
    ours_cost, plain_cost = costs[-1]
    assert abs(ours_cost - plain_cost) <= 1e-6 * max(1.0, abs(plain_cost)), costs[-1]
    return {
        "ours": statistics.median(ours_s),
        "plain": statistics.median(plain_s),
        "plain_solve": statistics.median(plain_solve),
    }


def fleet_milp(problem: object) -> object:
    """``schedule`` with the device-by-device proof switched off: the fleet's own MILP."""
    saved = decomposition.MIN_DEVICES
    decomposition.MIN_DEVICES = 10**9
    try:
        return schedule(problem, time_limit=TIME_LIMIT)
    finally:
        decomposition.MIN_DEVICES = saved


def v2g_side_by_side(problem: object, repeats: int) -> dict[str, object]:
    """Ours against the fleet MILP on ``problem``, run alternately: statuses, medians, costs."""
    ours_s, milp_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = schedule(problem, time_limit=TIME_LIMIT)
        ours_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        m = fleet_milp(problem)
        milp_s.append(time.perf_counter() - t0)
    return {
        "status": r.status.value,
        "ours": statistics.median(ours_s),
        "cost": r.costs.total if r.costs is not None else float("nan"),
        "milp_status": m.status.value,
        "milp": statistics.median(milp_s),
        "milp_cost": m.costs.total if m.costs is not None else float("nan"),
    }


def bare_schedule(n: int, repeats: int) -> float:
    """Median seconds of ``schedule`` alone on the parsed 1-battery request."""
    req = battery_request(n)
    problem = parse_site_problem(
        req["flex_model"], req["flex_context"], req["start"], req["duration"], req["resolution"]
    )
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        schedule(problem)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    """Print the table and the targets; exit 1 if a target fails."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one repeat per case")
    ap.add_argument("--skip-v2g", action="store_true", help="leave out the V2G fleets")
    ap.add_argument(
        "--skip-flexmeasures", action="store_true", help="leave out FlexMeasures' column"
    )
    args = ap.parse_args(argv)

    def fm(problem: object) -> str:
        """FlexMeasures' status and seconds on ``problem`` (one run), as a column."""
        if args.skip_flexmeasures:
            return ""
        r = flexmeasures_times(problem, 1)
        return f"  FlexMeasures: {r['status']} {r['seconds']:.2f} s (cost {r['cost']:.2f})"

    reps = 1 if args.quick else 3
    schedule(battery_problem(96))  # warm-up: imports and the first HiGHS instance
    targets: list[tuple[str, bool, str]] = []

    if not args.skip_v2g:
        print(f"{'case':<38} {'status':<11} {'ours s':>8} {'fleet MILP s':>13} {'ratio':>6}")
    for k, limit in () if args.skip_v2g else ((10, None), (50, None), (100, 2.0), (200, 5.0)):
        v2g = v2g_negative_evening_problem(k)
        m = v2g_side_by_side(v2g, reps)
        status, secs, cost = m["status"], m["ours"], m["cost"]
        print(
            f"{f'{k} V2G EVs x 192, -50 EUR/MWh 18-22h':<38} {status:<11} {secs:8.2f} "
            f"{m['milp']:13.2f} {secs / m['milp']:6.2f}  (cost {cost:.4f}; fleet MILP "
            f"{m['milp_status']}, {m['milp_cost']:.4f}){fm(v2g)}"
        )
        if limit is not None:
            ok = status == "optimal" and secs < limit
            label = f"{k} V2G EVs proven optimal < {limit:g} s"
            targets.append((label, ok, f"{status} {secs:.2f} s"))
        sys.stdout.flush()

    print(f"\n{'case':<38} {'status':<11} {'ours s':>8} {'plain LP s':>11} {'ratio':>6}")
    fleet = battery_fleet_problem(100)
    status = schedule(fleet, time_limit=TIME_LIMIT).status.value
    m = side_by_side(fleet, reps)
    ratio = m["ours"] / m["plain"]
    ratio_solve = m["ours"] / m["plain_solve"]
    print(
        f"{'100 batteries x 192':<38} {status:<11} {m['ours']:8.2f} {m['plain']:11.2f} {ratio:6.2f}"
    )
    print(
        f"{'  plain LP: solver call only':<38} {'':<11} {'':>8} {m['plain_solve']:11.2f} "
        f"{ratio_solve:6.2f}"
    )
    if not args.skip_flexmeasures:
        print(f"{'':<38} {fm(fleet)}")
    targets.append(("100 batteries x 192 < 2 s", m["ours"] < 2.0, f"{m['ours']:.2f} s"))
    targets.append(("100 batteries within 1.5x of a plain LP", ratio <= 1.5, f"{ratio:.2f}x"))

    rt = json_roundtrip(8760, max(reps, 5))
    bare = bare_schedule(8760, max(reps, 5))
    print(
        f"{'1 battery x 8760, JSON -> JSON':<38} {'optimal':<11} {rt:8.3f} "
        f"{'(schedule alone ' + f'{bare:.3f} s)':>18}"
    )
    if not args.skip_flexmeasures:
        print(f"{'  same problem, solver alone':<38} {fm(battery_problem(8760))}")
    targets.append(("1 battery x 8760 JSON -> JSON < 0.3 s", rt < 0.3, f"{rt:.3f} s"))

    print()
    ok = True
    for label, passed, value in targets:
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'}  {label}: {value}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
