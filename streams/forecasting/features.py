"""The feature matrix of a forecaster: one row per (forecast time, target event), no look-ahead.

A forecast made at time ``T`` for the event starting at ``t`` (its horizon is
``t - T``) sees the history only as it was believed at ``T``
(:meth:`BeliefHistory.as_of`): every feature built from beliefs takes ``T`` as
its belief time, so dropping all beliefs believed after ``T`` leaves the row
unchanged (the unit tests check this as a property).

Features, per row:

- ``horizon``: ``t - T`` in hours;
- calendar of ``t`` (:mod:`streams.forecasting.calendar`): local hour, weekday,
  day of year, public holiday;
- ``clear_sky``: the site's clear-sky irradiance at ``t`` (PV forecasters with a
  ``site``), and ``clearness``: measured over clear-sky energy of the last day;
- lags relative to the horizon: ``lag_day`` is the value at ``t - n`` days for
  the smallest ``n >= 1`` known at ``T`` (so yesterday's value for today, the day
  before yesterday's for tomorrow), ``lag_week`` likewise in weeks;
- ``last`` and ``since_last``: the latest event known at ``T``, its value and
  how long before ``t`` it started; ``day_mean``: mean of the last day known;
- ``reg:<sensor>``: each regressor's value for ``t`` as believed at ``T`` (a
  weather forecast for a future event, a measurement for a past one).

The seasonal-naive baseline is ``lag_day`` (daily season) or ``lag_week``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pandas as pd

from schemas.beliefs import Sensor
from schemas.forecaster import Forecaster, Site
from streams.forecasting.calendar import calendar_features
from streams.forecasting.clearsky import clear_sky_poa
from streams.forecasting.history import BeliefHistory

_US = 1_000_000
DAY_US = 86_400 * _US
WEEK_US = 7 * DAY_US


@dataclass(frozen=True)
class FeatureSpec:
    """What a forecaster's features need: step, horizon, local calendar, site, regressors."""

    step_us: int
    horizon_steps: int
    timezone: str = "UTC"
    country: str | None = None
    subdivision: str | None = None
    site: Site | None = None
    regressors: tuple[str, ...] = ()
    season: str = "daily"

    @classmethod
    def of(cls, forecaster: Forecaster, sensor: Sensor) -> FeatureSpec:
        """The spec of ``forecaster`` for its target ``sensor``."""
        step = forecaster.step(sensor.event_resolution)
        return cls(
            step_us=step // timedelta(microseconds=1),
            horizon_steps=max(1, forecaster.max_forecast_horizon // step),
            timezone=sensor.timezone,
            country=forecaster.holidays_country,
            subdivision=forecaster.holidays_subdivision,
            site=forecaster.site,
            regressors=tuple(forecaster.regressors),
            season=forecaster.season,
        )

    @property
    def horizon_us(self) -> int:
        """How far a forecast reaches, in µs."""
        return self.horizon_steps * self.step_us

    @property
    def season_us(self) -> int:
        """The season of the seasonal-naive baseline, in µs."""
        return WEEK_US if self.season == "weekly" else DAY_US


@dataclass(frozen=True)
class Histories:
    """The beliefs a forecaster reads: its target's and each regressor's."""

    target: BeliefHistory
    regressors: Mapping[str, BeliefHistory] = field(default_factory=dict)

    def known_by(self, at_us: int) -> Histories:
        """Only what was believed at or before ``at_us``."""
        return Histories(
            self.target.known_by(at_us),
            {k: h.known_by(at_us) for k, h in self.regressors.items()},
        )


def first_event(made_at_us: np.ndarray | int, step_us: int) -> np.ndarray:
    """Start of the first event a forecast made at ``made_at_us`` covers: the one in progress.

    The event in progress is not measured yet, so a schedule starting at the
    current step finds it forecast too.
    """
    t = np.asarray(made_at_us, dtype=np.int64)
    return t // step_us * step_us


def forecast_pairs(spec: FeatureSpec, made_at_us: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows (forecast time, event start) of forecasts made at each ``made_at_us``."""
    made = np.asarray(made_at_us, dtype=np.int64)
    k = np.arange(spec.horizon_steps, dtype=np.int64)
    starts = first_event(made, spec.step_us)[:, None] + k[None, :] * spec.step_us
    return np.repeat(made, spec.horizon_steps), starts.ravel()


def seasonal_lag(
    hist: BeliefHistory, made_at: np.ndarray, event: np.ndarray, season_us: int, horizon_us: int
) -> np.ndarray:
    """The value at ``event - n * season`` for the smallest ``n >= 1`` known at ``made_at``."""
    out = np.full(event.shape, np.nan)
    most = int(max(horizon_us, 0) // season_us) + 2
    for n in range(1, most + 1):
        todo = np.isnan(out)
        if not todo.any():
            break
        out[todo] = hist.as_of(event[todo] - n * season_us, made_at[todo])
    return out


def _clear_sky_grid(spec: FeatureSpec, lo_us: int, hi_us: int) -> tuple[int, np.ndarray] | None:
    """Clear-sky irradiance on the step grid from ``lo_us`` to ``hi_us`` (first start, values)."""
    if spec.site is None:
        return None
    first = int(lo_us // spec.step_us * spec.step_us)
    n = int((hi_us - first) // spec.step_us) + 1
    grid = first + np.arange(n, dtype=np.int64) * spec.step_us
    return first, clear_sky_poa(spec.site, grid, spec.step_us // _US)


def _per_forecast_time(
    spec: FeatureSpec, hist: BeliefHistory, made: np.ndarray, cs: tuple[int, np.ndarray] | None
) -> dict[str, np.ndarray]:
    """Features that depend on the forecast time only: the last day as known then."""
    steps_per_day = max(1, DAY_US // spec.step_us)
    base = made // spec.step_us * spec.step_us
    k = np.arange(1, steps_per_day + 1, dtype=np.int64)
    events = base[:, None] - k[None, :] * spec.step_us
    at = np.broadcast_to(made[:, None], events.shape)
    values = hist.as_of(events.ravel(), at.ravel()).reshape(events.shape)
    known = np.isfinite(values)
    count = known.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {"day_mean": np.where(count > 0, np.nansum(values, axis=1) / count, np.nan)}
        if cs is not None:
            first, grid = cs
            idx = np.clip((events - first) // spec.step_us, 0, len(grid) - 1)
            sky = np.where(known, grid[idx], 0.0).sum(axis=1)
            out["clearness"] = np.where(sky > 1.0, np.nansum(values, axis=1) / sky, np.nan)
    return out


def build_features(
    spec: FeatureSpec, hist: Histories, made_at_us: np.ndarray, event_us: np.ndarray
) -> pd.DataFrame:
    """The feature matrix of rows (forecast time ``made_at_us[i]``, event ``event_us[i]``).

    Every value taken from beliefs is as believed at the row's forecast time.
    Columns are in a fixed order; missing values are NaN.
    """
    made = np.asarray(made_at_us, dtype=np.int64)
    event = np.asarray(event_us, dtype=np.int64)
    target = hist.target
    cols: dict[str, np.ndarray] = {"horizon": (event - made) / 3.6e9}
    cols.update(calendar_features(event, spec.timezone, spec.country, spec.subdivision))
    cs = None
    if spec.site is not None and len(event):
        lo = min(int(event.min()), int(made.min()) - DAY_US - spec.step_us)
        cs = _clear_sky_grid(spec, lo, int(event.max()))
        assert cs is not None
        first, grid = cs
        cols["clear_sky"] = grid[(event - first) // spec.step_us]
    cols["lag_day"] = seasonal_lag(target, made, event, DAY_US, spec.horizon_us)
    cols["lag_week"] = seasonal_lag(target, made, event, WEEK_US, spec.horizon_us)
    latest = target.latest_event(made)
    has = latest >= 0
    cols["last"] = np.where(has, target.as_of(np.where(has, latest, 0), made), np.nan)
    cols["since_last"] = np.where(has, (event - latest) / 3.6e9, np.nan)
    uniq, inverse = np.unique(made, return_inverse=True)
    for name, values in _per_forecast_time(spec, target, uniq, cs).items():
        cols[name] = values[inverse]
    for name in spec.regressors:
        reg = hist.regressors.get(name, BeliefHistory.empty())
        cols[f"reg:{name}"] = reg.as_of(event, made)
    return pd.DataFrame(cols)


def naive_column(spec: FeatureSpec) -> str:
    """The feature column that is the seasonal-naive baseline."""
    return "lag_week" if spec.season == "weekly" else "lag_day"
