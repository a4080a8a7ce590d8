"""Benchmark: one battery over two days at 15 minutes, JSON in to JSON out, with peak pricing
and a commitment beside the plain request (medians of repeated runs, side by side).

Usage: .venv/bin/python tests/benchmarks/bench_peak_commitments.py [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from schemas.flex_request import parse_site_problem  # noqa: E402
from solvers import schedule  # noqa: E402

START = datetime(2026, 6, 1, tzinfo=UTC)
N = 192


def series(values: np.ndarray, unit: str) -> list[dict]:
    """One 15-minute segment per value from ``START``, as a FlexMeasures user writes it."""
    return [
        {
            "start": (START + timedelta(minutes=15 * i)).isoformat(),
            "duration": "PT15M",
            "value": f"{v:.2f} {unit}",
        }
        for i, v in enumerate(values)
    ]


def requests() -> tuple[dict, dict[str, dict]]:
    """The battery's flex-model and each case's flex-context (plain, peak, peak + commitment)."""
    rng = np.random.default_rng(1)
    prices = series(rng.uniform(20, 200, N), "EUR/MWh")
    load = rng.uniform(0, 15, N)
    battery = {
        "sensor": "battery",
        "soc-at-start": "20 kWh",
        "soc-min": "0 kWh",
        "soc-max": "40 kWh",
        "power-capacity": "10 kW",
        "roundtrip-efficiency": "90%",
    }
    base = {
        "consumption-price": prices,
        "inflexible-consumption": series(load, "kW"),
        "site-power-capacity": "40 kW",
    }
    peak = {"site-peak-consumption": "8 kW", "site-peak-consumption-price": "260 EUR/MW"}
    position = {
        "name": "day-ahead",
        "baseline": series(np.round(load / 2) * 2, "kW"),
        "up-price": "120 EUR/MWh",
        "down-price": "40 EUR/MWh",
    }
    return battery, {
        "plain": base,
        "peak pricing": {**base, **peak},
        "peak pricing + commitment": {**base, **peak, "commitments": [position]},
    }


def json_round_trip(flex_model: object, context: dict, repeat: int) -> tuple[float, object]:
    """Median seconds of JSON text in to JSON text out over two days, and the last result."""
    body = json.dumps({"flex-model": flex_model, "flex-context": context})
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        request = json.loads(body)
        problem = parse_site_problem(
            request["flex-model"], request["flex-context"], START, "P2D", "PT15M"
        )
        result = schedule(problem)
        json.dumps(result.to_json())
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    args = ap.parse_args()
    battery, cases = requests()
    medians = {}
    for label, context in cases.items():
        medians[label], result = json_round_trip(battery, context, args.repeat)
        costs = result.costs
        committed = sum(costs.commitments.values())
        print(
            f"{label:28s} {medians[label] * 1000:7.1f} ms  {result.status}  "
            f"peak {costs.peak_consumption:7.2f}  commitments {committed:7.2f}"
        )
    worst = medians["peak pricing + commitment"]
    print(
        f"peak pricing + commitment vs plain: {worst / medians['plain']:.2f}x; "
        f"target under 30 ms: {'PASS' if worst < 0.030 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
