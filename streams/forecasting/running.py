"""One registered forecaster in the worker: when to train, forecast and score (pure steps).

:class:`RunningForecaster` holds a forecaster's trained model and its clock of
events: when it last trained, forecast and scored, and when new readings of its
target last arrived. The agent asks it what is due; the answers depend only on
the times given (the injected clock), so they are tested without a worker.

Also here: the SQL that reads a forecaster's inputs from the history (only
deterministic beliefs of sources that are not forecasters), the records that
publish a forecast as beliefs (one ``BeliefBatch`` per quantile, source
``forecaster:<name>``, belief time = the time of forecasting), and the rows of
a scoring round for the ``forecast_scores`` table and their ``ForecastScores`` record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from connectors.clickhouse import identifier
from connectors.sdk.records import batch_records
from schemas.beliefs import Sensor
from schemas.forecaster import SOURCE_PREFIX, Forecaster
from schemas.times import engine_time, from_us
from streams.forecasting.features import FeatureSpec, seasonal_lag
from streams.forecasting.history import BeliefHistory
from streams.forecasting.pipeline import Forecast, Trained
from streams.forecasting.scoring import BucketScore, score

#: A time after every belief: the values as believed at the end of the data.
_ALL = np.iinfo(np.int64).max // 2
#: After a failed or empty training, wait this long before trying again.
RETRY_AFTER = timedelta(minutes=1)
#: History read before the forecast time for the features (lags of a week and a day).
FEATURE_HISTORY = timedelta(days=8)

_HISTORY_SQL = """
SELECT toUnixTimestamp64Micro(event_start), toUnixTimestamp64Micro(belief_time), event_value
FROM {db}.beliefs
WHERE sensor = {sensor:String} AND cumulative_probability = 0.5
  AND NOT startsWith(source, {prefix:String})
  AND event_start >= {lo:DateTime64(6, 'UTC')} AND event_start < {hi:DateTime64(6, 'UTC')}
  AND belief_time <= {known:DateTime64(6, 'UTC')}
"""

_FORECASTS_SQL = """
SELECT toUnixTimestamp64Micro(belief_time), toUnixTimestamp64Micro(event_start),
       cumulative_probability, event_value
FROM {db}.beliefs
WHERE sensor = {sensor:String} AND source = {source:String}
  AND event_start >= {lo:DateTime64(6, 'UTC')} AND event_start < {hi:DateTime64(6, 'UTC')}
"""


def history_query(
    database: str, sensor: str, lo: datetime, hi: datetime, known: datetime
) -> tuple[str, dict[str, Any]]:
    """SQL for the measured (non-forecast) beliefs of ``sensor`` with events in ``[lo, hi)``.

    Only beliefs believed at or before ``known`` (the worker's now): the store may
    hold beliefs stamped later, which no forecast made now may use.
    """
    return _HISTORY_SQL.replace("{db}", identifier(database), 1), {
        "sensor": sensor,
        "prefix": SOURCE_PREFIX,
        "lo": engine_time(lo),
        "hi": engine_time(hi),
        "known": engine_time(known),
    }


def forecasts_query(
    database: str, sensor: str, source: str, lo: datetime, hi: datetime
) -> tuple[str, dict[str, Any]]:
    """SQL for every forecast belief of ``source`` for ``sensor`` with events in ``[lo, hi)``."""
    return _FORECASTS_SQL.replace("{db}", identifier(database), 1), {
        "sensor": sensor,
        "source": source,
        "lo": engine_time(lo),
        "hi": engine_time(hi),
    }


def history_of(rows: list[list[Any]]) -> BeliefHistory:
    """A belief history from rows (event start µs, belief time µs, value)."""
    if not rows:
        return BeliefHistory.empty()
    a = np.asarray(rows, dtype=np.float64)
    return BeliefHistory.from_arrays(a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2])


@dataclass
class RunningForecaster:
    """A forecaster's model and the times that decide what is due."""

    forecaster: Forecaster
    trained: Trained | None = None
    trained_at: datetime | None = None
    train_failed_at: datetime | None = None
    forecast_at: datetime | None = None
    #: Monotonic time of the latest new reading of the target not yet forecast from.
    readings_since: float | None = None
    #: Event starts before this were scored (µs); None: not read from the store yet.
    scored_until_us: int | None = None
    score_pending: bool = False
    stats: dict[str, Any] = field(
        default_factory=lambda: {"trainings": 0, "forecasts": 0, "scored": 0, "error": None}
    )

    def spec(self, sensor: Sensor) -> FeatureSpec:
        """The feature spec for the target ``sensor``."""
        return FeatureSpec.of(self.forecaster, sensor)

    def train_due(self, now: datetime) -> bool:
        """Never trained, or trained ``retrain-frequency`` ago (a failure waits a minute)."""
        if self.train_failed_at is not None and now - self.train_failed_at < RETRY_AFTER:
            return False
        if self.trained is None or self.trained_at is None:
            return True
        return now - self.trained_at >= self.forecaster.retrain_frequency

    def forecast_due(self, now: datetime, mono: float) -> bool:
        """New readings quiet for ``debounce``, or ``forecast-frequency`` since the last."""
        if self.trained is None:
            return False
        if self.forecast_at is None:
            return True
        if self.readings_since is not None and (
            mono - self.readings_since >= self.forecaster.debounce.total_seconds()
        ):
            return True
        return now - self.forecast_at >= self.forecaster.forecast_frequency

    def training_window(self, now: datetime) -> tuple[datetime, datetime]:
        """Events read for training: the train period (and lags before it) up to now."""
        return now - self.forecaster.train_period - FEATURE_HISTORY, now

    def forecast_window(self, now: datetime) -> tuple[datetime, datetime]:
        """Events read for one forecast: lags before now, regressors over the horizon."""
        return now - FEATURE_HISTORY, now + self.forecaster.max_forecast_horizon + timedelta(1)


def forecast_records(
    forecaster: Forecaster, forecast: Forecast, step: timedelta
) -> list[dict[str, Any]]:
    """``BeliefBatch`` records of a forecast: per quantile, its runs of finite values."""
    made = from_us(forecast.made_at_us)
    out = []
    for i, q in enumerate(forecast.quantiles):
        values = forecast.values[:, i]
        finite = np.isfinite(values)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], finite.astype(np.int8), [0]))))
        for lo, hi in zip(edges[::2], edges[1::2], strict=True):
            out += batch_records(
                forecaster.sensor,
                from_us(int(forecast.event_start_us[lo])),
                step,
                values[lo:hi],
                source=forecaster.source,
                belief_time=made,
                cumulative_probability=q,
            )
    return out


def score_round(
    forecaster: Forecaster,
    spec: FeatureSpec,
    forecasts: list[list[Any]],
    measured: BeliefHistory,
) -> tuple[list[BucketScore], int, int] | None:
    """Score forecast beliefs (rows: belief time, event start, probability, value).

    Each forecast (one belief time and event) is compared with the event's
    measured value as believed now (``measured`` holds only what is believed
    now); its seasonal-naive baseline is the one known at the forecast's belief
    time. Returns the bucket sums, and the first and end (µs) of the scored
    events; None when no forecast has a measurement yet.
    """
    if not forecasts:
        return None
    a = np.asarray(forecasts, dtype=np.float64)
    bt, ev, cp, val = a[:, 0].astype(np.int64), a[:, 1].astype(np.int64), a[:, 2], a[:, 3]
    qs = list(forecaster.quantiles)
    keys, inverse = np.unique(np.column_stack([bt, ev]), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    matrix = np.full((len(keys), len(qs)), np.nan)
    for j, q in enumerate(qs):
        sel = np.isclose(cp, q)
        matrix[inverse[sel], j] = val[sel]
    made, events = keys[:, 0], keys[:, 1]
    # ``measured`` holds only what is believed by now (the query says so): all of it is
    # the truth now, also a belief from the current second (which the features, rounding
    # belief times up to the second, would count as known only from the next one).
    actual = measured.as_of(events, np.full(len(events), _ALL))
    has = np.isfinite(actual)
    if not has.any():
        return None
    naive = seasonal_lag(measured, made, events, spec.season_us, spec.horizon_us)
    horizon_s = (events - made) // 1_000_000
    scores = score(horizon_s[has], qs, matrix[has], naive[has], actual[has])
    scored = events[has]
    return scores, int(scored.min()), int(scored.max()) + spec.step_us


def score_rows(
    source: str,
    sensor: str,
    scores: list[BucketScore],
    first_us: int,
    end_us: int,
    now: datetime,
) -> list[list[Any]]:
    """Rows of the ``forecast_scores`` table for one scoring round scored at ``now``."""
    lo, hi = from_us(first_us), from_us(end_us)
    return [
        [
            source,
            sensor,
            b.horizon_from_s,
            b.horizon_to_s,
            lo,
            hi,
            b.n,
            b.abs_error,
            b.abs_measured,
            b.naive_abs_error,
            b.crps,
            {f"{q:g}": v for q, v in b.pinball.items()},
            now,
        ]
        for b in scores
    ]


SCORE_COLUMNS = [
    "source",
    "sensor",
    "horizon_from",
    "horizon_to",
    "events_from",
    "events_to",
    "n",
    "abs_error",
    "abs_measured",
    "naive_abs_error",
    "crps",
    "pinball",
    "scored_at",
]

#: The columns of ``forecast_scores`` one scoring round shares (the rest is per bucket).
_ROUND_COLUMNS = ("source", "sensor", "events_from", "events_to", "scored_at")


def score_record(rows: list[list[Any]]) -> dict[str, Any]:
    """The ``ForecastScores`` record of one round's rows (as :func:`score_rows` makes them).

    The forecasting role publishes it to the ``forecast-scores`` topic; the
    ingest role turns it back into rows (:func:`rows_of_score_record`).
    """
    if not rows:
        raise ValueError("a scoring round without rows has no record")
    first = dict(zip(SCORE_COLUMNS, rows[0], strict=True))
    buckets = [
        {c: v for c, v in zip(SCORE_COLUMNS, row, strict=True) if c not in _ROUND_COLUMNS}
        for row in rows
    ]
    return {**{c: first[c] for c in _ROUND_COLUMNS}, "buckets": buckets}


def rows_of_score_record(rec: dict[str, Any]) -> list[list[Any]]:
    """The ``forecast_scores`` rows (:data:`SCORE_COLUMNS`) of a ``ForecastScores`` record."""
    shared = {c: rec[c] for c in _ROUND_COLUMNS}
    return [[{**shared, **b}[c] for c in SCORE_COLUMNS] for b in rec["buckets"]]
