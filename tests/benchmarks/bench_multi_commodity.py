"""Benchmark: heat pump + heat buffer + battery + EV on one site x 192 steps, JSON in to JSON out.

The request is ``solvers.examples.heat_site_request`` (two commodities, the heat
pump a coupling with a COP per step, the buffer with losses and heat use). Each
run decodes the JSON, parses it, schedules and encodes the result; the median of
the runs is checked against the target (100 ms), beside the same site without
the heat pump and buffer.

Usage: .venv/bin/python tests/benchmarks/bench_multi_commodity.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from schemas.flex_request import parse_site_problem  # noqa: E402
from solvers import schedule  # noqa: E402
from solvers.examples import heat_site_request  # noqa: E402

TARGET_S = 0.100


def run_once(body: str) -> tuple[float, float, float, dict]:
    """One JSON-to-JSON round trip: wall seconds, CPU seconds, ``schedule``'s seconds, output.

    CPU time is the process's: on a shared machine the wall time also counts the
    time other processes hold the cores.
    """
    t = time.perf_counter()
    cpu = time.process_time()
    request = json.loads(body)
    problem = parse_site_problem(
        request["flex_model"],
        request["flex_context"],
        request["start"],
        request["duration"],
        request["resolution"],
    )
    result = schedule(problem)
    out = json.loads(json.dumps(result.to_json()))
    return time.perf_counter() - t, time.process_time() - cpu, result.timings["total"], out


def main() -> None:
    """Run both cases alternately and print medians with the target's verdict."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--steps", type=int, default=192)
    args = ap.parse_args()
    full = heat_site_request(args.steps)
    electric = {**full, "flex_model": full["flex_model"][3:]}
    cases = {"heat pump + buffer + battery + EV": full, "battery + EV only": electric}
    bodies = {label: json.dumps(req) for label, req in cases.items()}
    totals: dict[str, list[float]] = {label: [] for label in cases}
    solver: dict[str, list[float]] = {label: [] for label in cases}
    cpus: dict[str, list[float]] = {label: [] for label in cases}
    outputs: dict[str, dict] = {}
    for _ in range(args.repeat):
        for label, body in bodies.items():
            total, cpu, solve, out = run_once(body)
            totals[label].append(total)
            cpus[label].append(cpu)
            solver[label].append(solve)
            outputs[label] = out
    for label in cases:
        out = outputs[label]
        by = out["costs"].get("commodities", {})
        energy = ", ".join(f"{k} {v['energy']:.2f}" for k, v in by.items())
        print(
            f"{label:36s} median {statistics.median(totals[label]) * 1000:6.1f} ms wall, "
            f"{statistics.median(cpus[label]) * 1000:6.1f} ms CPU "
            f"(schedule() {statistics.median(solver[label]) * 1000:5.1f} ms, "
            f"min {min(totals[label]) * 1000:5.1f} ms)  {out['status']}  "
            f"total {out['costs']['total']:.2f} {out['costs']['currency']} [{energy}]"
        )
    label = "heat pump + buffer + battery + EV"
    wall, cpu = statistics.median(totals[label]), statistics.median(cpus[label])
    print(
        f"{args.steps} steps, {args.repeat} runs each; target under 100 ms: "
        f"wall {'PASS' if wall < TARGET_S else 'FAIL'}, CPU {'PASS' if cpu < TARGET_S else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
