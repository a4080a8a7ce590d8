"""A registered asset with a device group, from request to answers (pure, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from schemas.assets import Asset
from schemas.beliefs import Sensor
from solvers import Status
from streams.scheduling import problem as scheduling

T0 = datetime(2026, 6, 10, tzinfo=UTC)
SENSORS = {
    s.name: s
    for s in [
        Sensor(name=name, unit=unit, event_resolution=res)
        for name, unit, res in (
            ("bat", "kW", "PT1H"),
            ("pv", "kW", "PT1H"),
            ("pv-forecast", "kW", "PT1H"),
            ("inverter", "kW", "PT1H"),
            ("price", "EUR/MWh", "PT1H"),
        )
    ]
}
#: Beliefs per sensor and hour: selling pays 200 then 100 EUR/MWh; PV makes 4 kW, then 0.
BELIEFS = {"price": [200.0, 100.0], "pv-forecast": [4.0, 0.0]}


class Lookup:
    def series(self, sensor, start, end):
        values = BELIEFS[sensor]
        index = pd.DatetimeIndex([T0 + timedelta(hours=h) for h in range(len(values))])
        s = pd.Series(values, index=index)
        s.attrs["resolution"] = timedelta(hours=1)
        return s

    def latest_at(self, sensor, at):
        return None


HOME = Asset.model_validate(
    {
        "name": "home",
        "flex-context": {"consumption-price": {"sensor": "price"}},
        "flex-model": [
            {
                "sensor": "bat",
                "soc-at-start": "10 kWh",
                "soc-max": "10 kWh",
                "power-capacity": "5 kW",
                "group": {"sensor": "inverter"},
            },
            {
                "sensor": "pv",
                "inflexible-production": {"sensor": "pv-forecast"},
                "group": {"sensor": "inverter"},
            },
            {"sensor": "inverter", "power-capacity": "6 kW"},
        ],
    }
)


def test_the_inverter_group_of_a_registered_asset_is_answered_per_sensor():
    """As in tests/unit/test_solver_groups.py, with the PV read from its forecast sensor.

    Hour 0: the inverter leaves the battery 6 - 4 = 2 kW; hour 1: 5 kW. Answers:
    bat [-2, -5], pv none (measured, not scheduled), inverter [-6, -5] kW.
    """
    req = {
        "request_id": "r",
        "asset": "home",
        "start": T0,
        "duration_ms": 2 * 3_600_000,
        "resolution_ms": 3_600_000,
    }
    prepared = scheduling.prepare(req, {"home": HOME}, SENSORS, Lookup())
    assert prepared.devices == ["bat", "pv", "inverter"]
    result, ms = scheduling.solve(prepared)
    assert result.status is Status.OPTIMAL, result.message
    answers = {a.sensor: a for a in scheduling.answer(req, prepared, result, ms, T0)}
    assert answers["bat"].values == pytest.approx([-2.0, -5.0])
    assert answers["pv"].values == []
    assert answers["inverter"].values == pytest.approx([-6.0, -5.0])
    assert answers["inverter"].costs_total == pytest.approx(-1.7)
