"""Models and scores: non-crossing quantiles, the baseline, pinball and CRPS, the pvlib PV test."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

# Imported with the module: h5py (through pvlib) asks `uname -p` once, a process the
# unit tier's guard refuses during a test.
import pvlib  # noqa: F401
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from hypothesis_budget import examples

from streams.forecasting.features import FeatureSpec, Histories
from streams.forecasting.history import BeliefHistory
from streams.forecasting.models import SeasonalNaive, non_crossing
from streams.forecasting.pipeline import forecast, train, training_times
from streams.forecasting.samples import SITE, pvlib_pv_series
from streams.forecasting.scoring import BucketScore, combine, crps_from_quantiles, pinball, score

QS = (0.1, 0.5, 0.9)


@settings(max_examples=examples(100))
@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.just(3)), elements=st.floats(-1e3, 1e3)))
def test_quantiles_never_cross(values):
    out = non_crossing(values)
    assert (np.diff(out, axis=1) >= 0).all()
    assert np.allclose(np.sort(values, axis=1), out)


def test_pinball_loss_and_crps_by_hand():
    y = np.array([10.0, 10.0])
    assert np.allclose(pinball(y, np.array([8.0, 12.0]), 0.9), [0.9 * 2, 0.1 * 2])
    f = np.array([[8.0, 10.0, 13.0], [9.0, 11.0, 12.0]])
    expected = [
        2 / 3 * sum(pinball(y[i : i + 1], f[i : i + 1, j], q)[0] for j, q in enumerate(QS))
        for i in range(2)
    ]
    assert np.allclose(crps_from_quantiles(y, f, QS), expected)


@settings(max_examples=examples(60))
@given(st.integers(2, 200), st.integers(1, 199), st.randoms(use_true_random=False))
def test_scores_of_parts_add_up_to_the_score_of_the_whole(n, cut, rnd):
    """Stored sums make rounds of scoring add up exactly."""
    rng = np.random.default_rng(rnd.randint(0, 2**31))
    cut = min(cut, n - 1)
    horizon = rng.integers(0, 4 * 86_400, n)
    actual = rng.normal(size=n)
    f = non_crossing(rng.normal(size=(n, 3)))
    naive = rng.normal(size=n)
    whole = combine(score(horizon, QS, f, naive, actual))
    parts = combine(
        score(horizon[:cut], QS, f[:cut], naive[:cut], actual[:cut])
        + score(horizon[cut:], QS, f[cut:], naive[cut:], actual[cut:])
    )
    assert [b.horizon_from_s for b in whole] == [b.horizon_from_s for b in parts]
    for a, b in zip(whole, parts, strict=True):
        assert a.n == b.n and np.isclose(a.abs_error, b.abs_error)
        assert np.isclose(a.crps, b.crps) and np.isclose(a.naive_abs_error, b.naive_abs_error)
    assert sum(b.n for b in whole) == n


def test_metrics_of_a_bucket():
    b = BucketScore(0, 3600, n=4, abs_error=2.0, abs_measured=8.0, naive_abs_error=4.0, crps=1.0)
    b.pinball = {0.5: 1.0}
    m = b.metrics()
    assert (m["mae"], m["wape"], m["skill"], m["crps"], m["pinball_0.5"]) == (
        0.5,
        0.25,
        0.5,
        0.25,
        0.25,
    )
    assert b.label == "0-1 h" and BucketScore(172_800, 2**32 - 1).label == "48 h-"


def test_pairs_without_a_measurement_or_a_baseline_are_not_scored():
    horizon = np.array([-60, 100, 4000, 90_000])
    f = np.array([[1.0, 2.0, 3.0]] * 4)
    out = score(
        horizon, QS, f, np.array([1.0, np.nan, 1.0, 1.0]), np.array([2.0, 2.0, np.nan, 5.0])
    )
    assert [(b.label, b.n) for b in out] == [("0-1 h", 1), ("24-48 h", 1)]
    assert out[1].abs_error == 3.0 and out[1].naive_abs_error == 4.0


def test_seasonal_naive_quantiles_follow_its_training_errors():
    rng = np.random.default_rng(3)
    naive = rng.normal(size=2000)
    y = naive + rng.normal(scale=2.0, size=2000)
    model = SeasonalNaive(QS).fit(naive, np.full(2000, 3.0), y)
    out = model.predict(np.array([0.0]), np.array([3.0]))
    assert abs(out[0, 0] + 2.56) < 0.3 and abs(out[0, 1]) < 0.2 and abs(out[0, 2] - 2.56) < 0.3


def test_training_times_stay_before_now_and_move_across_the_day():
    spec = FeatureSpec(step_us=900_000_000, horizon_steps=192)
    t = training_times(spec, 0, 365 * 86_400_000_000, target_rows=100_000)
    assert t[-1] < 365 * 86_400_000_000 and len(t) * 192 <= 110_000
    hours = (t % 86_400_000_000) // 3_600_000_000
    assert len(set(hours.tolist())) == 24


def test_a_forecaster_of_measured_pv_beats_seasonal_naive_over_a_held_out_month():
    """PV power from pvlib's measured weather year: train until September, forecast September."""
    s = pvlib_pv_series()
    hist = Histories(
        BeliefHistory.from_arrays(s.event_start_us, s.event_start_us + s.step_us, s.values)
    )
    spec = FeatureSpec(step_us=s.step_us, horizon_steps=48, timezone="America/New_York", site=SITE)
    september = int(datetime(2021, 9, 1, tzinfo=UTC).timestamp() * 1e6)
    october = int(datetime(2021, 10, 1, tzinfo=UTC).timestamp() * 1e6)
    trained = train(spec, QS, "lightgbm", hist, september, int(s.event_start_us[0]))
    assert trained is not None
    scores = []
    day = 86_400_000_000
    for at in range(september, october - 2 * day + 1, day // 2):
        f = forecast(trained, hist, at)
        assert f.event_start_us[0] <= at < f.event_start_us[1] and len(f.event_start_us) == 48
        assert (np.diff(f.values, axis=1) >= 0).all()
        measured = hist.target.as_of(f.event_start_us, np.full(48, october + day))
        scores += score((f.event_start_us - at) // 1_000_000, QS, f.values, f.naive, measured)
    total = combine(scores)
    mae = sum(b.abs_error for b in total) / sum(b.n for b in total)
    naive_mae = sum(b.naive_abs_error for b in total) / sum(b.n for b in total)
    assert sum(b.n for b in total) > 2000
    assert mae < 0.95 * naive_mae, (mae, naive_mae)
