"""Benchmark: a battery, PV and a heat pump over two days at 15 minutes, JSON in to JSON out,
with a hybrid inverter group and on/off operation modes beside the plain request (medians).

Usage: .venv/bin/python tests/benchmarks/bench_groups_modes.py [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_peak_commitments import N, json_round_trip, series  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
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


if __name__ == "__main__":
    main()
