"""Benchmark: a battery, PV and a heat pump over two days at 15 minutes, JSON in to JSON out,
with a hybrid inverter group and on/off operation modes beside the plain request (medians).

Then the seeded one-day sites with an on/off heat pump behind a hybrid inverter
and a soft feeder (``solvers.feature_examples.seeded_group_modes_site``), each
solved as ``schedule`` does (no HiGHS restarts for operation-mode binaries)
and with HiGHS's default restarts, alternately: total, median and slowest
seconds, and the costs compared.

Usage: .venv/bin/python tests/benchmarks/bench_groups_modes.py [--repeat N] [--seeds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peak_commitments import N, json_round_trip, series  # noqa: E402

import solvers.engine as engine  # noqa: E402
from solvers import schedule  # noqa: E402
from solvers.feature_examples import seeded_group_modes_site  # noqa: E402


def restarts_side_by_side(seeds: int) -> None:
    """Seconds per seeded site without and with HiGHS's restarts (see the module docstring)."""
    mine = engine._mode_choices
    times: dict[str, list[float]] = {"ours (no restarts)": [], "HiGHS default (restarts)": []}
    for seed in range(1, seeds + 1):
        problem = seeded_group_modes_site(seed)
        costs = []
        for label, hint in zip(times, (mine, lambda problem: False), strict=True):
            engine._mode_choices = hint
            try:
                t0 = time.perf_counter()
                r = schedule(problem, time_limit=60)
                times[label].append(time.perf_counter() - t0)
            finally:
                engine._mode_choices = mine
            assert r.status.value == "optimal", r.message
            costs.append(r.costs.total)
        assert abs(costs[0] - costs[1]) <= 1e-4 * max(1.0, abs(costs[1])), (seed, costs)
    print(f"\n{seeds} seeded one-day sites with an on/off heat pump (seconds):")
    for label, ts in times.items():
        print(
            f"  {label:26s} total {sum(ts):6.2f}  median {statistics.median(ts):5.2f}  "
            f"slowest {max(ts):5.2f}"
        )
    ours, default = (sum(ts) for ts in times.values())
    print(f"  ours vs default: {ours / default:.2f}x in total")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--seeds", type=int, default=20, help="seeded sites to compare (0: none)")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    hours = np.arange(N) / 4.0
    sun = np.clip(np.sin((hours % 24 - 6) / 12 * np.pi), 0, None)
    battery = {
        "sensor": "battery",
        "soc-at-start": "20 kWh",
        "soc-max": "40 kWh",
        "power-capacity": "10 kW",
        "roundtrip-efficiency": "90%",
    }
    pv = {"sensor": "pv", "inflexible-production": series(8 * sun, "kW")}
    heat = {
        "sensor": "heat-pump",
        "soc-at-start": "10 kWh",
        "soc-max": "30 kWh",
        "power-capacity": "3 kW",
        "production-capacity": "0 kW",
        "charging-efficiency": "300%",
        "soc-usage": series(rng.uniform(1, 5, N), "kW"),
    }
    modes = {
        "operation-modes": [
            {"consumption-range": ["0 kW", "0 kW"]},
            {"consumption-range": ["1.5 kW", "3 kW"]},
        ]
    }
    inverter = {"group": {"sensor": "inverter"}}
    context = {
        "consumption-price": series(rng.uniform(20, 200, N), "EUR/MWh"),
        "production-price": "15 EUR/MWh",
        "inflexible-consumption": series(rng.uniform(0, 4, N), "kW"),
        "site-power-capacity": "25 kW",
    }
    cases = {
        "plain": [battery, pv, heat],
        "inverter group (10 kW)": [
            {**battery, **inverter},
            {**pv, **inverter},
            heat,
            {"sensor": "inverter", "power-capacity": "10 kW"},
        ],
        "+ soft feeder (8 kW)": [
            {**battery, **inverter},
            {**pv, **inverter},
            {**heat, "group": {"sensor": "feeder"}},
            {"sensor": "inverter", "power-capacity": "10 kW", "group": {"sensor": "feeder"}},
            {"sensor": "feeder", "consumption-capacity": "8 kW"},
        ],
        "heat pump on/off modes": [battery, pv, {**heat, **modes}],
    }
    medians = {}
    for label, flex_model in cases.items():
        medians[label], result = json_round_trip(flex_model, context, args.repeat)
        print(
            f"{label:24s} {medians[label] * 1000:8.1f} ms  {result.status}  "
            f"cost {result.costs.total:9.2f}  breaches {result.costs.breaches:8.2f}  "
            f"binaries {result.used_binaries}  solver {result.timings['solve'] * 1000:.0f} ms"
        )
    for label in list(cases)[1:]:
        print(f"{label} vs plain: {medians[label] / medians['plain']:.2f}x")
    if args.seeds:
        restarts_side_by_side(args.seeds)


if __name__ == "__main__":
    main()
