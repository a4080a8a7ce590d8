"""Train a forecaster on what was known, and forecast from what is known now.

Training (:func:`train`) at time ``now``: forecast times ``T`` run over the
training period on a stride; for each, the rows of the events its forecast
covers (:func:`~streams.forecasting.features.forecast_pairs`), their features as
believed at ``T``, and as target the event's value as believed at ``now`` (the
latest measurement). Rows whose target is not known at ``now`` are left out. So
the model learns to forecast from what a forecast at ``T`` could know.

Forecasting (:func:`forecast`) at ``at``: the rows of one forecast, features as
believed at ``at``, the model's quantiles and the seasonal-naive baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streams.forecasting.features import (
    FeatureSpec,
    Histories,
    build_features,
    forecast_pairs,
    naive_column,
)
from streams.forecasting.models import QuantileBoosters, SeasonalNaive

#: Training rows aimed at: the stride between forecast times grows with the data.
TARGET_ROWS = 100_000


@dataclass
class Trained:
    """A trained forecaster: what it forecasts, and its model and baseline."""

    spec: FeatureSpec
    quantiles: tuple[float, ...]
    model: str
    boosters: QuantileBoosters | None
    naive: SeasonalNaive
    trained_at_us: int
    rows: int


@dataclass
class Forecast:
    """One forecast: event starts, quantiles (rows x levels), the baseline, its belief time."""

    made_at_us: int
    event_start_us: np.ndarray
    quantiles: tuple[float, ...]
    values: np.ndarray
    naive: np.ndarray

    @property
    def median(self) -> np.ndarray:
        """The median forecast."""
        return self.values[:, list(self.quantiles).index(0.5)]


def training_times(
    spec: FeatureSpec, start_us: int, now_us: int, target_rows: int = TARGET_ROWS
) -> np.ndarray:
    """Forecast times of the training rows: from ``start_us`` on, whole steps apart.

    The stride keeps about ``target_rows`` rows; it is a whole number of steps
    plus one, so forecast times move across the hours of the day.
    """
    last = now_us - spec.step_us  # a forecast whose first event is already measured
    if last <= start_us:
        return np.empty(0, np.int64)
    steps = (last - start_us) // spec.step_us
    stride = max(1, -(-int(steps * spec.horizon_steps) // max(target_rows, 1)))
    if stride > 1 and stride % 4 == 0:
        stride += 1
    return start_us + spec.step_us * np.arange(0, steps, stride, dtype=np.int64)


def train(
    spec: FeatureSpec,
    quantiles: tuple[float, ...],
    model: str,
    hist: Histories,
    now_us: int,
    train_start_us: int,
    target_rows: int = TARGET_ROWS,
) -> Trained | None:
    """Train on the history as believed at ``now_us``; None when there is nothing to learn."""
    hist = hist.known_by(now_us)
    made = training_times(spec, train_start_us, now_us, target_rows)
    if not len(made):
        return None
    made, event = forecast_pairs(spec, made)
    y = hist.target.as_of(event, np.full(event.shape, now_us))
    keep = np.isfinite(y)
    if keep.sum() < 50:
        return None
    made, event, y = made[keep], event[keep], y[keep]
    x = build_features(spec, hist, made, event)
    naive = SeasonalNaive(quantiles).fit(
        x[naive_column(spec)].to_numpy(), x["horizon"].to_numpy(), y
    )
    boosters = None
    if model == "lightgbm":
        boosters = QuantileBoosters(quantiles, list(x.columns)).fit(x.to_numpy(np.float64), y)
    return Trained(spec, quantiles, model, boosters, naive, now_us, int(keep.sum()))


def forecast(trained: Trained, hist: Histories, at_us: int) -> Forecast:
    """The forecast made at ``at_us`` from what was believed then."""
    spec = trained.spec
    made, event = forecast_pairs(spec, np.array([at_us], dtype=np.int64))
    x = build_features(spec, hist, made, event)
    naive = x[naive_column(spec)].to_numpy()
    horizon = x["horizon"].to_numpy()
    if trained.boosters is not None:
        values = trained.boosters.predict(x.to_numpy(np.float64))
    else:
        values = trained.naive.predict(naive, horizon)
    return Forecast(at_us, event, trained.quantiles, values, naive)
