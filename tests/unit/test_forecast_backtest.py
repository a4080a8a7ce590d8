"""The walk-forward backtest uses only what was believed at each forecast time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from streams.demo.data import SITE_TZ, make_site
from streams.forecasting.backtest import backtest
from streams.forecasting.features import FeatureSpec, Histories
from streams.forecasting.history import BeliefHistory

DAY = 86_400_000_000
US = timedelta(microseconds=1)


def load_history(days: int) -> tuple[np.ndarray, np.ndarray]:
    start = datetime(2026, 1, 5, tzinfo=UTC)
    load = next(s for s in make_site(start, days) if s.sensor == "demo-load")
    step = load.step // US
    starts = (start - datetime(1970, 1, 1, tzinfo=UTC)) // US + step * np.arange(days * 96)
    return starts, load.values


def run(hist: Histories, first: int):
    spec = FeatureSpec(step_us=900_000_000, horizon_steps=24, timezone=SITE_TZ, country="NL")
    return backtest(
        spec,
        (0.1, 0.5, 0.9),
        "lightgbm",
        hist,
        first + 8 * DAY,
        first + 11 * DAY,
        DAY // 2,
        DAY,
        7 * DAY,
    )


def test_corrections_believed_after_the_end_change_the_scores_but_no_forecast():
    starts, values = load_history(12)
    plain = Histories(BeliefHistory.from_arrays(starts, starts + 900_000_000, values))
    # Every event of the backtest span corrected by +1 kW, believed after the end.
    late = starts >= starts[0] + 7 * DAY
    corrected = Histories(
        BeliefHistory.from_arrays(
            np.concatenate([starts, starts[late]]),
            np.concatenate([starts + 900_000_000, np.full(late.sum(), starts[0] + 30 * DAY)]),
            np.concatenate([values, values[late] + 1.0]),
        )
    )
    a, b = run(plain, int(starts[0])), run(corrected, int(starts[0]))
    assert len(a.forecasts) == len(b.forecasts) == 6 and a.trainings == 3
    for fa, fb in zip(a.forecasts, b.forecasts, strict=True):
        assert np.array_equal(fa.values, fb.values) and np.array_equal(fa.naive, fb.naive)
    # The truth is what is known at the end of the data: the corrected values.
    assert sum(s.n for s in a.scores) == sum(s.n for s in b.scores) > 0
    assert sum(s.abs_error for s in a.scores) != sum(s.abs_error for s in b.scores)
    assert all(s.metrics()["skill"] > 0 for s in a.scores)
