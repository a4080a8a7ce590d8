"""A forecaster in the worker: what is due when, forecast records, a scoring round."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from schemas import serde
from schemas.forecaster import Forecaster
from schemas.times import to_us
from streams.forecasting.features import FeatureSpec
from streams.forecasting.history import BeliefHistory
from streams.forecasting.models import SeasonalNaive
from streams.forecasting.pipeline import Forecast, Trained
from streams.forecasting.running import (
    SCORE_COLUMNS,
    RunningForecaster,
    forecast_records,
    history_query,
    score_round,
    score_rows,
)

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
F = Forecaster.model_validate(
    {
        "name": "load-ahead",
        "sensor": "load",
        "max-forecast-horizon": "PT1H",
        "retrain-frequency": "PT6H",
        "forecast-frequency": "PT1H",
        "debounce": "PT5S",
    }
)
SPEC = FeatureSpec(step_us=900_000_000, horizon_steps=4)


def trained() -> Trained:
    return Trained(SPEC, F.quantiles, "seasonal-naive", None, SeasonalNaive(F.quantiles), 0, 100)


def test_training_forecasting_and_debounce_are_due_by_the_clock():
    r = RunningForecaster(F)
    assert r.train_due(NOW) and not r.forecast_due(NOW, 0.0)
    r.trained, r.trained_at = trained(), NOW
    assert not r.train_due(NOW + timedelta(hours=5)) and r.train_due(NOW + timedelta(hours=6))
    assert r.forecast_due(NOW, 0.0)  # never forecast yet
    r.forecast_at = NOW
    assert not r.forecast_due(NOW + timedelta(minutes=59), 100.0)
    assert r.forecast_due(NOW + timedelta(hours=1), 100.0)
    r.readings_since = 100.0  # new readings: forecast once they are quiet for the debounce
    assert not r.forecast_due(NOW + timedelta(minutes=1), 104.0)
    assert r.forecast_due(NOW + timedelta(minutes=1), 105.0)
    r.train_failed_at = NOW + timedelta(hours=6)
    assert not r.train_due(NOW + timedelta(hours=6, seconds=30))
    assert r.train_due(NOW + timedelta(hours=6, minutes=1))


def test_a_forecast_becomes_one_batch_per_quantile_believed_at_the_forecast_time():
    starts = to_us(NOW) + 900_000_000 * np.arange(4)
    values = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [np.nan, np.nan, np.nan], [1, 2, 3]])
    f = Forecast(to_us(NOW), starts, F.quantiles, values, np.zeros(4))
    recs = forecast_records(F, f, timedelta(minutes=15))
    # NaN steps are left out: two runs per quantile.
    assert len(recs) == 6
    assert {r["cumulative_probability"] for r in recs} == {0.1, 0.5, 0.9}
    assert all(r["source"] == "forecaster:load-ahead" and r["belief_time"] == NOW for r in recs)
    assert [(r["start"], len(r["values"])) for r in recs[:2]] == [
        (NOW, 2),
        (NOW + timedelta(minutes=45), 1),
    ]
    serde.encode("BeliefBatch", recs[0])  # a valid message


def test_a_scoring_round_compares_forecasts_with_measurements_and_the_naive_known_then():
    made = to_us(NOW)
    events = [made + k * 900_000_000 for k in range(4)]
    rows = [
        [made, e, q, v] for e in events for q, v in zip(F.quantiles, (0.0, 1.0, 2.0), strict=True)
    ]
    day = 86_400_000_000
    # Yesterday's values (the naive), and measurements of the first two events only.
    es = [e - day for e in events] + events[:2]
    bt = [e - day + 900_000_000 for e in events] + [made + 3_600_000_000] * 2
    measured = BeliefHistory.from_arrays(es, bt, [3.0] * 4 + [2.0, 2.0])
    out = score_round(F, SPEC, rows, measured)
    assert out is not None
    scores, first, end = out
    assert (first, end) == (events[0], events[1] + 900_000_000)
    (bucket,) = scores
    assert bucket.n == 2 and bucket.abs_error == 2.0 and bucket.naive_abs_error == 2.0
    table = score_rows(F.source, "load", scores, first, end, NOW)
    assert len(table[0]) == len(SCORE_COLUMNS)
    # measured 2.0 against quantiles 0, 1, 2 on two events
    assert np.allclose(list(table[0][11].values()), [2 * 0.1 * 2, 2 * 0.5 * 1, 0.0])
    assert score_round(F, SPEC, rows, BeliefHistory.empty()) is None


def test_history_sql_leaves_out_forecasts_and_what_was_believed_later():
    sql, params = history_query("flexstream", "load", NOW - timedelta(days=1), NOW, NOW)
    assert "NOT startsWith(source, {prefix:String})" in sql and params["prefix"] == "forecaster:"
    assert "belief_time <= {known:DateTime64(6, 'UTC')}" in sql
    assert params["known"] == "2026-05-01 12:00:00.000000"


def test_a_measurement_from_the_current_second_is_scored():
    made = to_us(NOW)
    rows = [[made, made, q, v] for q, v in zip(F.quantiles, (0.0, 1.0, 2.0), strict=True)]
    day = 86_400_000_000
    just_now = NOW + timedelta(minutes=20, microseconds=174_000)
    measured = BeliefHistory.from_arrays(
        [made - day, made], [made - day + 900_000_000, to_us(just_now)], [3.0, 2.0]
    )
    out = score_round(F, SPEC, rows, measured)
    assert out is not None and out[0][0].n == 1
