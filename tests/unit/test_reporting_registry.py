"""Registry, describe() for a future 'show reporters', compute_report glue, grid invariants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis_budget import examples
from reporting_frames import beliefs

from schemas.errors import InputError
from schemas.reporters import load_parameters
from streams.reports.reporters import (
    REPORTERS,
    AggregatorReporter,
    compute_report,
    describe,
    make_reporter,
)
from streams.reports.reporters.grid import Grid

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def test_registry_names_every_reporter_and_describes_its_fields():
    assert set(REPORTERS) == {"AggregatorReporter", "PandasReporter", "ProfitOrLossReporter"}
    described = {d["name"]: d for d in describe()}
    assert set(described) == set(REPORTERS)
    fields = {f["name"]: f for f in described["PandasReporter"]["fields"]}
    assert set(fields) == {"required_input", "required_output", "transformations"}
    assert all(f["required"] and f["description"] for f in fields.values())
    agg = {f["name"]: f for f in described["AggregatorReporter"]["fields"]}
    assert agg["method"]["default"] == "sum" and agg["weights"]["default"] == {}
    assert described["ProfitOrLossReporter"]["summary"]
    with pytest.raises(InputError) as err:
        describe("SlowReporter")
    assert err.value.field == "reporter"


def test_make_reporter_from_yaml_text():
    reporter = make_reporter("AggregatorReporter", "method: max")
    assert isinstance(reporter, AggregatorReporter)
    assert reporter.config.method == "max"


def test_compute_report_maps_aliases_sensors_units_and_sources():
    params = load_parameters(
        """
input:
  - {name: pv, sensor: pv-mw, sources: [meter, forecaster]}
  - {name: consumption, sensor: house-kw}
output: [{name: net, sensor: net-kw}]
window: PT2H
resolution: PT1H
"""
    )
    pv = pd.concat(
        [beliefs(T0, [-0.002], source="meter"), beliefs(T0, [-0.004, -0.006], source="forecaster")]
    )
    out = compute_report(
        AggregatorReporter({"weights": {"consumption": -1}}),
        params,
        {"pv": pv, "consumption": beliefs(T0, [1.0, 1.0])},
        {"pv-mw": "MW", "house-kw": "kW", "net-kw": "kW"},
        T0,
        T0 + timedelta(hours=2),
    )
    # hour 1: the meter (preferred) -2 kW; hour 2: only the forecast, -6 kW
    assert out["net"].tolist() == pytest.approx([-2.0 - 1.0, -6.0 - 1.0])
    with pytest.raises(InputError) as err:
        compute_report(AggregatorReporter({}), params, {}, {"pv-mw": "MW"}, T0, T0)
    assert err.value.field == "input[1].sensor"


def test_an_empty_window_gives_empty_series_not_nan():
    out = AggregatorReporter({}).compute(
        {"a": beliefs(T0 - timedelta(days=2), [1.0])}, T0, T0 + timedelta(hours=3), "PT1H",
        input_units={"a": "kW"},
    )  # fmt: skip
    assert out["output"].empty and out["output"].dtype == float


@settings(max_examples=examples(60))
@given(
    minutes=st.sampled_from([5, 15, 30, 60, 90, 120]),
    values=st.lists(st.floats(-1e3, 1e3), min_size=1, max_size=40),
    offset=st.integers(0, 11).map(lambda k: k * 5),
)
def test_resampling_conserves_amounts_inside_the_window(minutes, values, offset):
    """Summing an extensive quantity onto any grid keeps the total of what lies inside it."""
    start = T0 + timedelta(minutes=offset)
    step = timedelta(minutes=minutes)
    n = len(values)
    window_end = T0 + timedelta(hours=6)
    grid = Grid.build(T0, window_end, timedelta(hours=1), "UTC", timedelta(minutes=15))
    starts = np.array([int((start + i * step).timestamp() * 1e9) for i in range(n)])
    ends = starts + int(step.total_seconds() * 1e9)
    vals = np.array(values)
    slots = grid.resample(starts, ends, vals, extensive=True)
    lo, hi = grid.slots[0], grid.slots[-1]
    overlap = np.clip(np.minimum(ends, hi) - np.maximum(starts, lo), 0, None)
    inside = (vals * overlap / (ends - starts)).sum()
    covered = ~np.isnan(slots)
    assert np.nansum(slots) == pytest.approx(
        sum(
            v * max(0, min(e, grid.slots[k + 1]) - max(s, grid.slots[k])) / (e - s)
            for k in np.flatnonzero(covered)
            for s, e, v in zip(starts, ends, vals, strict=True)
        ),
        abs=1e-6,
    )
    if covered.all():
        assert np.nansum(slots) == pytest.approx(inside, abs=1e-6)
    # a slot is complete exactly when events cover it entirely
    for k in range(len(slots)):
        a, b = grid.slots[k], grid.slots[k + 1]
        cover = sum(max(0, min(e, b) - max(s, a)) for s, e in zip(starts, ends, strict=True))
        assert covered[k] == (cover == b - a)
