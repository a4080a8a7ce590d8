"""A request for a portfolio asset schedules its child sites toward one market (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from schemas.assets import Asset
from schemas.beliefs import Sensor
from schemas.errors import InputError
from solvers import Status
from streams.scheduling import problem as scheduling

T0 = datetime(2026, 6, 10, tzinfo=UTC)
SENSORS = {
    s.name: s
    for s in [
        Sensor(name="a-bat", unit="kW", event_resolution="PT1H"),
        Sensor(name="b-bat", unit="kW", event_resolution="PT1H"),
        Sensor(name="soc", unit="kWh", event_resolution="PT0M"),
        Sensor(name="price", unit="EUR/MWh", event_resolution="PT1H"),
    ]
}


class Lookup:
    """Prices 0, 100, 0, 100 EUR/MWh by the hour; every SOC sensor at 5 kWh."""

    def series(self, sensor, start, end):
        idx = pd.DatetimeIndex([T0 + timedelta(hours=h) for h in range(4)])
        s = pd.Series([0.0, 100.0, 0.0, 100.0], index=idx)
        s.attrs["resolution"] = timedelta(hours=1)
        return s

    def latest_at(self, sensor, at):
        return T0, 5.0


def battery(sensor: str) -> dict:
    return {
        "sensor": sensor,
        "soc-at-start": {"sensor": "soc"},
        "soc-min": "0 kWh",
        "soc-max": "10 kWh",
        "power-capacity": "5 kW",
    }


def registry(market: dict) -> dict[str, Asset]:
    vpp = Asset.model_validate({"name": "vpp", "flex-context": market})
    a = Asset.model_validate(
        {
            "name": "depot",
            "parent": "vpp",
            "flex-model": battery("a-bat"),
            "flex-context": {"site-power-capacity": "5 kW", "inflexible-consumption": "2 kW"},
        }
    )
    b = Asset.model_validate({"name": "home", "parent": "vpp", "flex-model": battery("b-bat")})
    return {"vpp": vpp, "depot": a, "home": b}


def request(**kw):
    r = {
        "request_id": "p1",
        "asset": "vpp",
        "start": T0,
        "duration_ms": 4 * 3_600_000,
        "resolution_ms": 3_600_000,
    }
    r.update(kw)
    return r


def test_the_children_are_scheduled_jointly_toward_the_market_price():
    """Buy at 0, sell at 100: each battery sells 10 kWh, charging only what it needs.

    Both start at 5 kWh and discharge 5 kW in the two dear hours, so each charges
    5 kWh in the free hours, as early as it can (the tie-break). The home charges
    5 kW at once. The depot's 5 kW connection carries its 2 kW load, so its battery
    charges at most 3 kW: 3 then 2. Portfolio net: 10, -8, 4, -8 kW; sold
    2 x 8 kWh at 0.1 EUR/kWh: -1.6 EUR.
    """
    reg = registry({"consumption-price": {"sensor": "price"}})
    p = scheduling.prepare(request(), reg, SENSORS, Lookup())
    assert p.devices == ["a-bat", "b-bat"] and p.soc_sensors == {"a-bat": "soc", "b-bat": "soc"}
    result, ms = scheduling.solve(p)
    assert result.status == Status.OPTIMAL, result.message
    answers = scheduling.answer(request(), p, result, ms, T0)
    got = {a.sensor: a for a in answers}
    assert set(got) == {"a-bat", "b-bat"}
    assert {a.asset for a in answers} == {"vpp"}
    assert all(a.answered_devices == ["a-bat", "b-bat"] for a in answers)
    assert got["b-bat"].values == pytest.approx([5.0, -5.0, 0.0, -5.0])
    assert got["a-bat"].values == pytest.approx([3.0, -5.0, 2.0, -5.0])
    assert result.net_power == pytest.approx([10.0, -8.0, 4.0, -8.0])
    assert result.total == pytest.approx(-1.6)


def test_a_market_commitment_is_met_by_the_sites_together():
    """Hold the portfolio at 2 kW: only the depot's load; the batteries stay idle or balance."""
    position = {
        "name": "da",
        "baseline": "2 kW",
        "up-price": "1000 EUR/MWh",
        "down-price": "-1000 EUR/MWh",
    }
    reg = registry({"consumption-price": "50 EUR/MWh", "commitments": [position]})
    p = scheduling.prepare(request(), reg, SENSORS, Lookup())
    result, _ = scheduling.solve(p)
    assert result.status == Status.OPTIMAL, result.message
    net = result.net_power
    assert net == pytest.approx([2.0] * 4)


def test_overrides_of_sites_are_refused_and_a_site_error_names_the_site():
    reg = registry({"consumption-price": {"sensor": "price"}})
    with pytest.raises(InputError) as exc:
        scheduling.prepare(request(devices=["a-bat"]), reg, SENSORS, Lookup())
    assert exc.value.field == "devices" and "ask for that site itself" in str(exc.value)
    with pytest.raises(InputError) as exc:
        scheduling.prepare(
            request(flex_model=json.dumps({"soc-max": "1 kWh"})), reg, SENSORS, Lookup()
        )
    assert exc.value.field == "flex_model"
    bad = dict(reg)
    home = reg["home"].model_dump(by_alias=True, exclude_none=True)
    home["flex-model"] = [dict(battery("b-bat"), **{"soc-max": "ten"})]
    bad["home"] = Asset.model_validate(home)
    _, answers = scheduling.prepare_or_fail(request(), bad, SENSORS, Lookup(), T0)
    assert {a.sensor for a in answers} == {"a-bat", "b-bat"}
    assert {a.status for a in answers} == {Status.INVALID}
    assert answers[0].message.startswith("sites[home].flex-model[0].soc-max")


def test_the_market_takes_only_market_fields():
    reg = registry({"consumption-price": "50 EUR/MWh", "site-power-capacity": "1 MW"})
    with pytest.raises(InputError) as exc:
        scheduling.prepare(request(), reg, SENSORS, Lookup())
    assert exc.value.field == "flex-context.site-power-capacity"
