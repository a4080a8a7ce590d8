"""A schedule input without beliefs falls back to the latest median forecast, and says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from schemas import serde
from schemas.assets import Asset
from schemas.beliefs import Sensor, validate
from streams.beliefs.state import BeliefState
from streams.scheduling import problem as scheduling
from streams.scheduling.inputs import MissingInput

NOW = datetime(2026, 6, 10, 8, tzinfo=UTC)
SENSORS = {
    s.name: s
    for s in [
        Sensor(name="bat", unit="kW", event_resolution="PT15M"),
        Sensor(name="load", unit="kW", event_resolution="PT15M"),
    ]
}
ASSETS = {
    "home": Asset.model_validate(
        {
            "name": "home",
            "flex-context": {
                "consumption-price": "100 EUR/MWh",
                "inflexible-device-sensors": [{"sensor": "load"}],
                "site-power-capacity": "20 kW",
            },
            "flex-model": {
                "sensor": "bat",
                "soc-at-start": "5 kWh",
                "soc-max": "10 kWh",
                "power-capacity": "5 kW",
            },
        }
    )
}
REQUEST = {
    "request_id": "r",
    "asset": "home",
    "start": NOW,
    "duration_ms": 4 * 3_600_000,
    "resolution_ms": 900_000,
}


def beliefs(state: BeliefState, start, values, source, cp=0.5, belief_time=NOW):
    rec = {
        "sensor": "load",
        "start": start,
        "resolution_ms": 900_000,
        "values": values,
        "belief_time": belief_time,
        "source": source,
        "cumulative_probability": cp,
    }
    kind, dec = serde.decode(serde.encode("BeliefBatch", rec))
    cols, rejected = validate(kind, dec, SENSORS, NOW)
    assert rejected == []
    state.update(cols)


def state() -> BeliefState:
    return BeliefState({}, lambda: NOW)


def test_steps_without_beliefs_take_the_latest_median_forecast_and_the_message_says_so():
    st = state()
    beliefs(st, NOW, [1.0] * 4, "meter")  # the first hour is known
    old = NOW - timedelta(hours=1)
    beliefs(st, NOW, [9.0] * 16, "forecaster:load-ahead", belief_time=old)  # an older forecast
    beliefs(st, NOW, [2.0] * 16, "forecaster:load-ahead")  # the latest forecast
    beliefs(st, NOW, [7.0] * 16, "forecaster:load-ahead", cp=0.1)  # not the median
    prepared, failed = scheduling.prepare_or_fail(
        REQUEST, ASSETS, SENSORS, st, NOW, {"load": ["load-ahead"]}
    )
    assert failed == [] and prepared is not None
    (note,) = prepared.notes
    assert note == (
        "sensor 'load': 12 of 16 steps (2026-06-10T09:00:00Z to 2026-06-10T12:00:00Z) from "
        "the latest median forecast of forecaster:load-ahead"
    )
    result, ms = scheduling.solve(prepared)
    answers = scheduling.answer(REQUEST, prepared, result, ms, NOW)
    assert answers[0].status.value == "optimal"
    assert "inputs from forecasts: sensor 'load': 12 of 16 steps" in answers[0].message


def test_measured_beliefs_win_over_newer_forecasts():
    st = state()
    beliefs(st, NOW, [2.0] * 16, "forecaster:load-ahead", belief_time=NOW)
    beliefs(st, NOW, [1.0] * 16, "meter", belief_time=NOW - timedelta(hours=1))
    prepared, failed = scheduling.prepare_or_fail(
        REQUEST, ASSETS, SENSORS, st, NOW, {"load": ["load-ahead"]}
    )
    assert prepared is not None and prepared.notes == []


def test_without_beliefs_or_forecasts_the_error_names_the_sensor_and_span():
    st = state()
    beliefs(st, NOW, [1.0] * 4, "meter")
    beliefs(st, NOW, [2.0] * 8, "forecaster:load-ahead")  # covers two of the four hours
    prepared, failed = scheduling.prepare_or_fail(
        REQUEST, ASSETS, SENSORS, st, NOW, {"load": ["load-ahead"]}
    )
    assert prepared is None
    message = failed[0].message
    assert failed[0].status.value == "error"
    assert "no beliefs of sensor 'load' for 8 of 16 steps" in message
    assert "from 2026-06-10T10:00:00Z to 2026-06-10T12:00:00Z" in message
    assert "forecasters load-ahead cover no more" in message
    assert not re.search(r"Traceback|Error:", message)
    # Without a forecaster of the sensor, its forecasts are not used either way round.
    with pytest.raises(MissingInput, match="for 12 of 16 steps"):
        st2 = state()
        beliefs(st2, NOW, [1.0] * 4, "meter")
        scheduling.prepare(REQUEST, ASSETS, SENSORS, st2, {})
