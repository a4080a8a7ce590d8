"""Our scheduler beside FlexMeasures' own ``device_scheduler`` on peaks, commitments, groups, modes.

Run: ``PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_flexmeasures_cases.py [--repeat N]``

Each case of ``solvers.feature_examples`` (the hand-derived requests of the
unit tests for peak pricing, commitments, device groups and operation modes,
then seeded two-day sites) is solved by ``solvers.schedule`` and, translated by
``flexmeasures_reference`` into the FlowCommitments, EMS constraint groups and
power bands FlexMeasures 1.0.1's StorageScheduler would pass, by its
``device_scheduler`` in its own environment (``data/fm-env``, installed from
PyPI on first use; direct HiGHS back end, gaps 0). Per case: both statuses,
costs and median seconds (``--repeat`` runs each; FlexMeasures' seconds are
its ``device_scheduler`` call alone, not its interpreter's start), the cost
difference, and PASS when the statuses agree (optimal or relaxed against
optimal; infeasible against infeasible) and the costs agree within 1e-6
relative (DIFF otherwise; n/a where ``device_scheduler`` cannot express the
problem, with the reason). The hand-derived total is checked too. Where
capacities are priced at steps other than hourly, a second line gives
FlexMeasures' cost with breach prices as it means them (per kW per hour, one
breach peak per run of constant capacity), which differs from ours.

Then the 1 battery x 192 steps request with peak pricing and a commitment of
``bench_peak_commitments``: our JSON-to-JSON and ``schedule`` seconds beside
FlexMeasures' solver seconds. Exit 1 if any case is DIFF.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peak_commitments import requests  # noqa: E402
from flexmeasures_reference import flexmeasures_times  # noqa: E402

from schemas.flex_request import parse_site_problem  # noqa: E402
from solvers import schedule  # noqa: E402
from solvers.feature_examples import HAND_DERIVED, FeatureCase, seeded_cases  # noqa: E402

TIME_LIMIT = 60.0
SOLVED = {"optimal", "relaxed"}


def ours(problem: Any, repeats: int) -> tuple[str, float, float]:
    """Status, median seconds and total cost of ``solvers.schedule``."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = schedule(problem, time_limit=TIME_LIMIT)
        times.append(time.perf_counter() - t0)
    cost = result.costs.total if result.costs is not None else float("nan")
    return result.status.value, statistics.median(times), cost


def verdict(our_status: str, our_cost: float, fm: dict[str, Any]) -> tuple[str, float]:
    """PASS or DIFF, and the cost difference (ours minus FlexMeasures')."""
    fm_status = fm["status"]
    if our_status == "infeasible" or fm_status.startswith("infeasible"):
        same = our_status == "infeasible" and fm_status.startswith("infeasible")
        return ("PASS" if same else "DIFF"), float("nan")
    diff = our_cost - fm["cost"]
    ok = our_status in SOLVED and fm_status == "optimal"
    ok &= abs(diff) <= 1e-6 * max(1.0, abs(fm["cost"]))
    return ("PASS" if ok else "DIFF"), diff


def run_case(case: FeatureCase, repeats: int) -> tuple[str, str]:
    """One row of the table and its verdict."""
    problem = case.build()
    status, secs, cost = ours(problem, repeats)
    hand = ""
    if case.status is not None:
        agrees = status == case.status and (
            case.total is None or abs(cost - case.total) <= 1e-6 * max(1.0, abs(case.total))
        )
        hand = "hand ok" if agrees else f"hand {case.status} {case.total}"
    mine = f"{status:<10} {cost:>12.6f} {secs * 1000:8.1f}"
    try:
        fm = flexmeasures_times(problem, repeats)
    except TypeError as exc:
        return f"{case.name:<28} {mine}   n/a: {exc}", "n/a"
    mark, diff = verdict(status, cost, fm)
    if fm["status"] != "optimal":
        fm["cost"] = float("nan")  # device_scheduler reports 0 for a failed solve
    notes = f"  ({'; '.join(fm['notes'])})" if fm["notes"] else ""
    row = (
        f"{case.name:<28} {mine}   {fm['status'][:10]:<10} {fm['cost']:>12.6f} "
        f"{fm['seconds'] * 1000:8.1f} {diff:>10.2e}  {mark:<4} {hand}{notes}"
    )
    if priced_capacities(problem) and problem.grid.dt_hours != 1.0:
        native = flexmeasures_times(problem, 1, native_breaches=True)
        row += (
            f"\n{'':<28} breach prices as FlexMeasures means them (per kW per hour): "
            f"{native['status']} {native['cost']:.6f}"
        )
    return row, mark


def priced_capacities(problem: Any) -> bool:
    """Whether any site or group capacity of ``problem`` has a breach price."""
    bp = problem.breach_prices
    sides = (bp.site_consumption, bp.site_production)
    groups = [(g.consumption_breach_price, g.production_breach_price) for g in problem.groups]
    return any(p is not None for p in (*sides, *(p for pair in groups for p in pair)))


def issue_benchmark(repeats: int) -> None:
    """1 battery x 192 steps with peak pricing and a commitment: ours beside FlexMeasures'."""
    battery, cases = requests()
    start = datetime(2026, 6, 1, tzinfo=UTC)
    print("\n1 battery x 192 steps (bench_peak_commitments), medians of", repeats)
    print(
        f"{'case':<28} {'ours JSON->JSON ms':>18} {'schedule ms':>12} {'FM ms':>8} {'FM/ours':>8}"
    )
    for label, context in cases.items():
        body = json.dumps({"flex-model": battery, "flex-context": context})
        full, bare = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            request = json.loads(body)
            problem = parse_site_problem(
                request["flex-model"], request["flex-context"], start, "P2D", "PT15M"
            )
            t1 = time.perf_counter()
            result = schedule(problem)
            t2 = time.perf_counter()
            json.dumps(result.to_json())
            full.append(time.perf_counter() - t0)
            bare.append(t2 - t1)
        fm = flexmeasures_times(problem, repeats)
        mark, _ = verdict(result.status.value, result.costs.total, fm)
        ms = statistics.median(full) * 1000
        print(
            f"{label:<28} {ms:18.1f} {statistics.median(bare) * 1000:12.1f} "
            f"{fm['seconds'] * 1000:8.1f} {fm['seconds'] * 1000 / ms:8.1f}  {mark} "
            f"(cost {result.costs.total:.4f} vs {fm['cost']:.4f})"
        )


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 1 if a case differs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per case (medians)")
    ap.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3])
    ap.add_argument("--skip-issue", action="store_true", help="leave out the 192-step request")
    args = ap.parse_args(argv)
    schedule(HAND_DERIVED[0].build())  # warm-up: imports and the first HiGHS instance
    print(
        f"{'case':<28} {'ours':<10} {'cost':>12} {'ms':>8}   {'FM':<10} {'cost':>12} "
        f"{'ms':>8} {'ours-FM':>10}"
    )
    marks = []
    for case in [*HAND_DERIVED, *seeded_cases(tuple(args.seeds))]:
        row, mark = run_case(case, args.repeat)
        marks.append(mark)
        print(row, flush=True)
    print(
        f"\n{marks.count('PASS')} PASS, {marks.count('DIFF')} DIFF, "
        f"{marks.count('n/a')} n/a of {len(marks)}"
    )
    if not args.skip_issue:
        issue_benchmark(max(args.repeat, 5))
    return 1 if "DIFF" in marks else 0


if __name__ == "__main__":
    sys.exit(main())
