"""Benchmark of the forecasting core: training time, forecast time, skill per horizon bucket.

Pure (no broker, no store), on this machine:

- training on one year of 15-minute data for one sensor (the demo site's load,
  horizon P2D, quantiles 0.1/0.5/0.9, calendar and NL holidays): median of runs,
  target under 30 s;
- one 2-day forecast with three quantiles after training (features as believed
  at the forecast time, three boosters): median of runs, target under 200 ms;
- skill (1 - MAE / MAE of seasonal naive) per horizon bucket, forecasts made
  every 6 hours over a held-out month with the model trained before it: on the
  PV series derived from pvlib's measured TMY3 year (hourly, clear-sky
  features; September held out) and on the demo load (15 minutes; the last
  30 days of 13 months held out).

Usage: .venv/bin/python tests/benchmarks/bench_forecasting.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from streams.demo.data import SITE_TZ, make_site  # noqa: E402
from streams.forecasting.features import FeatureSpec, Histories  # noqa: E402
from streams.forecasting.history import BeliefHistory  # noqa: E402
from streams.forecasting.pipeline import forecast, train  # noqa: E402
from streams.forecasting.samples import SITE, pvlib_pv_series  # noqa: E402
from streams.forecasting.scoring import combine, score  # noqa: E402

QS = (0.1, 0.5, 0.9)
DAY = 86_400_000_000
US = timedelta(microseconds=1)


def demo_load(days: int) -> tuple[Histories, int, int]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    load = next(s for s in make_site(start, days) if s.sensor == "demo-load")
    step = load.step // US
    starts = (start - datetime(1970, 1, 1, tzinfo=UTC)) // US + step * np.arange(len(load.values))
    hist = Histories(BeliefHistory.from_arrays(starts, starts + step, load.values))
    return hist, int(starts[0]), step


def skill_table(name: str, spec: FeatureSpec, hist: Histories, first: int, cut: int, end: int):
    trained = train(spec, QS, "lightgbm", hist, cut, first)
    assert trained is not None
    rows = []
    for at in range(cut, end - spec.horizon_us + 1, DAY // 4):
        f = forecast(trained, hist, at)
        measured = hist.target.as_of(f.event_start_us, np.full(len(f.event_start_us), end + DAY))
        rows += score((f.event_start_us - at) // 1_000_000, QS, f.values, f.naive, measured)
    print(
        f"\nskill on {name} (held out {datetime.fromtimestamp(cut / 1e6, UTC):%Y-%m-%d} to "
        f"{datetime.fromtimestamp(end / 1e6, UTC):%Y-%m-%d}, forecasts every 6 h):"
    )
    print(
        f"  {'horizon':>9} {'pairs':>6} {'MAE':>7} {'naive MAE':>9} {'skill':>6} {'WAPE':>6} "
        f"{'CRPS':>6}"
    )
    total = combine(rows)
    for b in total:
        m = b.metrics()
        print(
            f"  {b.label:>9} {b.n:>6} {m['mae']:>7.3f} {m['naive_mae']:>9.3f} "
            f"{m['skill']:>6.3f} {m['wape']:>6.3f} {m['crps']:>6.3f}"
        )
    all_err = sum(b.abs_error for b in total)
    all_naive = sum(b.naive_abs_error for b in total)
    print(f"  {'all':>9} {sum(b.n for b in total):>6} skill {1 - all_err / all_naive:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    runs, forecasts = (1, 5) if args.quick else (3, 20)

    hist, first, step = demo_load(365 + 31)
    spec = FeatureSpec(step_us=step, horizon_steps=192, timezone=SITE_TZ, country="NL")
    now = first + 365 * DAY
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        trained = train(spec, QS, "lightgbm", hist, now, first)
        times.append(time.perf_counter() - t)
    assert trained is not None
    print(
        f"training, one year of 15-minute data ({trained.rows} rows, 3 quantiles): "
        f"median {statistics.median(times):.2f} s over {runs} runs (target < 30 s)"
    )
    took = []
    for i in range(forecasts):
        t = time.perf_counter()
        f = forecast(trained, hist, now + i * 900_000_000)
        took.append(time.perf_counter() - t)
    assert f.values.shape == (192, 3)
    print(
        f"one 2-day forecast, 192 steps x 3 quantiles: median "
        f"{statistics.median(took) * 1000:.1f} ms over {forecasts} runs (target < 200 ms)"
    )

    pv = pvlib_pv_series()
    pv_hist = Histories(
        BeliefHistory.from_arrays(pv.event_start_us, pv.event_start_us + pv.step_us, pv.values)
    )
    pv_spec = FeatureSpec(
        step_us=pv.step_us, horizon_steps=48, timezone="America/New_York", site=SITE
    )
    september = int(datetime(2021, 9, 1, tzinfo=UTC).timestamp() * 1e6)
    october = int(datetime(2021, 10, 1, tzinfo=UTC).timestamp() * 1e6)
    skill_table(
        "pvlib-derived PV (hourly, 5 kWp)",
        pv_spec,
        pv_hist,
        int(pv.event_start_us[0]),
        september,
        october,
    )
    skill_table(
        "demo load (15 min)", spec, hist, first, first + (365 + 1) * DAY, first + (365 + 31) * DAY
    )


if __name__ == "__main__":
    main()
