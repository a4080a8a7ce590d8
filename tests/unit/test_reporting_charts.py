"""Chart building (pure): data selection, sources and panels per unit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from reporting_frames import beliefs

from schemas.errors import InputError
from streams.cli.charts import build_chart, chart_data, source_kind

T0 = "2026-06-01T00:00Z"


def _frames():
    old = beliefs(T0, [1.0, 1.0, 1.0])
    corrected = beliefs(T0, [5.0], belief_lag="2h")
    schedule = beliefs(T0, [2.0, -2.0, 0.0], source="scheduler")
    return {
        "battery": pd.concat([old, corrected, schedule]),
        "price": beliefs(T0, [50.0, 60.0, 70.0], source="entsoe"),
        "cost": beliefs(T0, [3.0], freq="1D", source="daily-report"),
    }


def test_chart_data_keeps_each_sources_most_recent_belief():
    data = chart_data(_frames(), {"battery": "kW", "price": "EUR/MWh", "cost": "EUR"})
    battery = data[(data["sensor"] == "battery") & (data["source"] == "meter")]
    assert battery["event_value"].tolist() == [5.0, 1.0, 1.0]
    kinds = dict(zip(data["source"], data["kind"], strict=False))
    assert kinds == {
        "meter": "belief",
        "scheduler": "schedule",
        "entsoe": "belief",
        "daily-report": "report",
    }
    assert data["event_start"].iloc[0] == "2026-06-01T00:00:00Z"


def test_kinds_can_be_given_per_source():
    assert source_kind("highs", {"highs": "schedule"}) == "schedule"
    assert source_kind("Scheduler v2") == "schedule"
    assert source_kind("meter") == "belief"


def test_one_panel_per_unit_with_independent_y_axes():
    spec = build_chart(_frames(), {"battery": "kW", "price": "EUR/MWh", "cost": "EUR"}).to_dict()
    assert len(spec["vconcat"]) == 3
    titles = [panel["layer"][0]["encoding"]["y"]["title"] for panel in spec["vconcat"]]
    assert titles == ["kW", "EUR/MWh", "EUR"]
    assert spec["resolve"]["scale"]["y"] == "independent"
    line = spec["vconcat"][0]["layer"][0]
    assert line["mark"]["interpolate"] == "step-after"
    assert line["encoding"]["strokeDash"]["field"] == "kind"


def test_empty_frames_are_refused():
    empty = beliefs(T0, np.array([]))
    with pytest.raises(InputError):
        chart_data({"x": empty})
