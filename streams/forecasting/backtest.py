"""Walk-forward backtest: forecasts as they would have been made, scored against what came.

From ``start`` to ``end``, every ``every`` (default: the forecaster's
``forecast-frequency``) a forecast is made at time ``T`` by the model trained
last (retrained every ``retrain-frequency``, each time at ``T`` on the history as
believed at ``T``), from the history as believed at ``T``: no belief believed
after ``T`` enters a forecast made at ``T`` or the model it uses. Each forecast
is scored against the measured value of its events as known at the end of the
data, beside the seasonal-naive baseline known at ``T``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from streams.forecasting.features import FeatureSpec, Histories
from streams.forecasting.pipeline import Forecast, Trained, forecast, train
from streams.forecasting.scoring import BucketScore, combine, score


@dataclass
class Backtest:
    """The outcome: scores per horizon bucket, the forecasts made, trainings and their time."""

    scores: list[BucketScore] = field(default_factory=list)
    forecasts: list[Forecast] = field(default_factory=list)
    trainings: int = 0
    train_seconds: float = 0.0
    forecast_seconds: float = 0.0


def backtest(
    spec: FeatureSpec,
    quantiles: tuple[float, ...],
    model: str,
    hist: Histories,
    start_us: int,
    end_us: int,
    every_us: int,
    retrain_us: int,
    train_period_us: int,
) -> Backtest:
    """Run the walk-forward backtest over ``[start_us, end_us)`` (see the module docstring)."""
    out = Backtest()
    truth_at = np.iinfo(np.int64).max // 2
    trained: Trained | None = None
    trained_at = None
    rows: list[BucketScore] = []
    for at in range(start_us, end_us, every_us):
        if trained is None or trained_at is None or at - trained_at >= retrain_us:
            t = time.perf_counter()
            fitted = train(spec, quantiles, model, hist, at, at - train_period_us)
            out.train_seconds += time.perf_counter() - t
            if fitted is not None:
                trained, trained_at = fitted, at
                out.trainings += 1
        if trained is None:
            continue
        t = time.perf_counter()
        made = forecast(trained, hist, at)
        out.forecast_seconds += time.perf_counter() - t
        keep = made.event_start_us < end_us
        measured = hist.target.as_of(made.event_start_us, np.full(len(keep), truth_at))
        horizon = (made.event_start_us - at) // 1_000_000
        rows += score(horizon[keep], quantiles, made.values[keep], made.naive[keep], measured[keep])
        out.forecasts.append(made)
    out.scores = combine(rows)
    return out
