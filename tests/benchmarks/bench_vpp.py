"""VPP benchmark: sites with a battery and an EV each, 96 quarter-hours, one portfolio commitment.

Run: ``PYTHONPATH=. .venv/bin/python tests/benchmarks/bench_vpp.py [--repeat N] [--joint-1000]``

The portfolios are ``solvers.examples.portfolio_request`` documents (FlexMeasures
flex-models with units; seeded, varied capacities, SOCs, EV departures and
returns, office loads; one day-ahead commitment priced around the day-ahead
price). Printed, medians of ``--repeat`` runs (3 by default):

- 100 sites: parsing, then ``schedule_portfolio`` (joint below 400 sites):
  status, proof, seconds (target: proven optimal under 5 s);
- 1,000 sites: parsing, then ``schedule_portfolio`` (decomposed from 400 sites):
  status, gap to the proven lower bound, seconds (target: under 60 s);
- ratios: 1,000 against 100 sites; with ``--joint-1000`` also the joint
  program on 1,000 sites once (about 100 s here) and the decomposed schedules'
  cost against its optimum.

Shared machine: timings are medians and move with the load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from schemas.portfolio import parse_portfolio  # noqa: E402
from solvers.examples import portfolio_request  # noqa: E402
from solvers.portfolio import schedule_portfolio  # noqa: E402


def run(n_sites: int, repeat: int, method: str = "auto") -> dict:
    """Median parse and solve seconds over ``repeat`` runs, with the last result."""
    document = portfolio_request(n_sites)
    parse_s, solve_s = [], []
    result = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        problem = parse_portfolio(document)
        parse_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        result = schedule_portfolio(problem, method=method)
        solve_s.append(time.perf_counter() - t0)
    return {
        "parse": statistics.median(parse_s),
        "solve": statistics.median(solve_s),
        "runs": solve_s,
        "result": result,
    }


def show(label: str, row: dict) -> None:
    """One line per case."""
    r = row["result"]
    gap = "-" if r.gap is None else f"{r.gap:.2e}"
    runs = ", ".join(f"{s:.1f}" for s in row["runs"])
    print(
        f"{label:<28} {r.method:<10} {r.status!s:<10} proven={r.proven_optimal!s:<5} "
        f"gap={gap:<8} total={r.total:>12.2f} EUR  parse {row['parse']:6.2f} s  "
        f"solve {row['solve']:6.2f} s (runs: {runs})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--joint-1000", action="store_true", help="also the joint program, once")
    args = ap.parse_args()
    small = run(100, args.repeat)
    show("100 sites x 2 devices x 96", small)
    large = run(1000, args.repeat)
    show("1000 sites x 2 devices x 96", large)
    print(f"ratio 1000/100 sites: solve {large['solve'] / small['solve']:.1f}x")
    if args.joint_1000:
        joint = run(1000, 1, method="joint")
        show("1000 sites, joint", joint)
        print(
            f"decomposed/joint on 1000 sites: time {large['solve'] / joint['solve']:.2f}x, "
            f"cost {large['result'].total / joint['result'].total:.6f}x"
        )


if __name__ == "__main__":
    main()
