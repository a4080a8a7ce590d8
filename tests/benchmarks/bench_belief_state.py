"""Micro-benchmark of the belief state alone: ``BeliefState.update`` and ``series``.

No broker, no worker: batches of validated belief columns as the ingesting agent
hands them over, on a plain dict as the persisted form. Prints readings/s of
``update`` for single-reading and 96-value messages, for live data (events in
the last day, belief time now) and old data (outside the rolling window), and
the latency of ``series`` over two days.

Usage: .venv/bin/python tests/benchmarks/bench_belief_state.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from schemas.beliefs import BeliefColumns  # noqa: E402
from schemas.times import to_us  # noqa: E402
from streams.beliefs.state import BeliefState  # noqa: E402

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
STEP_US = 900 * 1_000_000
DAY_US = 86_400 * 1_000_000


def batch(n_msgs: int, per_msg: int, first_us: int, sensors: int, seq: int) -> BeliefColumns:
    """``n_msgs`` messages of ``per_msg`` readings each, round-robin over ``sensors``.

    Messages of one sensor follow each other in time, wrapping around one day
    before ``first_us`` + one day, so live data stay inside the window.
    """
    cols = BeliefColumns()
    bt = to_us(NOW) - 60_000_000 + seq
    for i in range(n_msgs):
        k = seq * n_msgs + i
        sensor = k % sensors
        slot = (k // sensors * per_msg) % 96
        start = first_us + slot * STEP_US
        cols.sensor.append(f"s{sensor}")
        cols.source.append("meter")
        cols.event_start_us.append(start + STEP_US * np.arange(per_msg, dtype=np.int64))
        cols.event_resolution_s.append(np.full(per_msg, 900, dtype=np.uint32))
        cols.belief_time_us.append(np.full(per_msg, bt, dtype=np.int64))
        cols.cumulative_probability.append(np.full(per_msg, 0.5))
        cols.event_value.append(np.arange(per_msg, dtype=np.float64) + k)
        cols.counts.append(per_msg)
    return cols


def run(per_msg: int, msgs_per_batch: int, batches: int, live: bool, sensors: int) -> float:
    """Readings/s of ``update`` over ``batches`` batches (columns built beforehand)."""
    first = to_us(NOW) - DAY_US if live else to_us(datetime(2015, 1, 1, tzinfo=UTC))
    data = [batch(msgs_per_batch, per_msg, first, sensors, j) for j in range(batches)]
    st = BeliefState({}, lambda: NOW, past=timedelta(days=7), future=timedelta(days=7))
    t = time.perf_counter()
    for cols in data:
        st.update(cols)
    return batches * msgs_per_batch * per_msg / (time.perf_counter() - t)


def series_ms(reps: int) -> float:
    """Milliseconds of one two-day ``series`` read of a 15-minute sensor with two sources."""
    st = BeliefState({}, lambda: NOW, past=timedelta(days=7), future=timedelta(days=7))
    first = to_us(NOW) - 3 * DAY_US
    for source in ("a", "b"):
        cols = batch(6, 96, first, 1, 0)
        cols.source = [source] * len(cols.sensor)
        for j in range(6):
            cols.event_start_us[j] = first + j * DAY_US // 2 + STEP_US * np.arange(96)
        st.update(cols)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        st.series("s0", NOW - timedelta(days=2), NOW)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer batches")
    args = ap.parse_args()
    batches = 5 if args.quick else 20
    cases = [
        ("single, live, 1 sensor", 1, 2000, True, 1),
        ("single, live, 500 sensors", 1, 2000, True, 500),
        ("single, old", 1, 2000, False, 1),
        ("batched 96, live, 1 sensor", 96, 200, True, 1),
        ("batched 96, live, 200 sensors", 96, 200, True, 200),
        ("batched 96, old", 96, 200, False, 1),
    ]
    print("BeliefState.update alone, readings/s (median of 3 runs):")
    for name, per_msg, n_msgs, live, sensors in cases:
        rates = [run(per_msg, n_msgs, batches, live, sensors) for _ in range(3)]
        print(f"  {name:<32}{statistics.median(rates):>14,.0f}")
    print(f"series over two days, two sources: {series_ms(200):.3f} ms")


if __name__ == "__main__":
    main()
