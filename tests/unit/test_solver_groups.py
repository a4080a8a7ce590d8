"""Device groups (FlexMeasures' ``group``), from flex-model JSON to schedules, by hand.

Every expected number below is derived in the test's docstring; the requests
go through ``parse_site_problem`` as a user writes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from schemas.flex_request import parse_site_problem
from schemas.schedule import ScheduleRequestContext
from solvers import Status, schedule
from solvers.feature_examples import GROUP_BATTERY as BATTERY
from solvers.feature_examples import INVERTER, PV, group_soft_capacity

START = "2024-05-01T00:00+00:00"
T0 = datetime(2024, 5, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def solve(fm: Any, fc: dict[str, Any], hours: int) -> Any:
    return schedule(parse_site_problem(fm, fc, START, f"PT{hours}H", "PT1H"))


def prices(*values: float) -> list[dict[str, str]]:
    """One EUR/kWh price per hour."""
    return [
        {"start": (T0 + k * HOUR).isoformat(), "duration": "PT1H", "value": f"{v} EUR/kWh"}
        for k, v in enumerate(values)
    ]


def test_a_hybrid_inverter_caps_battery_discharge_while_pv_produces():
    """Battery (10 kWh full, 5 kW) and PV share a 6 kW inverter; selling pays 0.2 then 0.1.

    Step 0: PV makes 4 kW, so the inverter leaves the battery 6 - 4 = 2 kW.
    Step 1: no PV, the battery may discharge its full 5 kW.
    Battery [-2, -5] kW, SOC 10 -> 8 -> 3 kWh; the inverter's net power is
    [-4 - 2, -5] = [-6, -5] kW. Cost: -(6 * 0.2 + 5 * 0.1) = -1.7 EUR.
    Without the group the battery discharges 5 and 5: -(9 * 0.2 + 5 * 0.1) = -2.3 EUR.
    """
    fc = {"consumption-price": prices(0.2, 0.1)}
    result = solve([BATTERY, PV, INVERTER], fc, 2)
    assert result.status is Status.OPTIMAL, result.message
    bat = result.schedule_of("bat")
    np.testing.assert_allclose(bat.power, [-2.0, -5.0], atol=1e-6)
    np.testing.assert_allclose(bat.soc, [10.0, 8.0, 3.0], atol=1e-6)
    inverter = result.schedule_of("inverter")
    assert inverter.kind == "group"
    np.testing.assert_allclose(inverter.power, [-6.0, -5.0], atol=1e-6)
    assert result.costs.total == pytest.approx(-1.7, abs=1e-6)

    alone = [{k: v for k, v in d.items() if k != "group"} for d in (BATTERY, PV)]
    free = solve(alone, fc, 2)
    np.testing.assert_allclose(free.schedule_of("bat").power, [-5.0, -5.0], atol=1e-6)
    assert free.costs.total == pytest.approx(-2.3, abs=1e-6)


def test_a_nested_group_counts_its_members_toward_the_outer_group():
    """The 6 kW inverter joins a 5.5 kW feeder: its members count toward both.

    Step 0: PV 4 kW leaves min(6, 5.5) - 4 = 1.5 kW for the battery; step 1: min(5, 5.5) = 5.
    Battery [-1.5, -5]; inverter and feeder [-5.5, -5] kW.
    Cost -(5.5 * 0.2 + 5 * 0.1) = -1.6 EUR.
    """
    fc = {"consumption-price": prices(0.2, 0.1)}
    feeder = {"asset": 7, "power-capacity": "5.5 kW"}
    result = solve([BATTERY, PV, {**INVERTER, "group": {"asset": 7}}, feeder], fc, 2)
    assert result.status is Status.OPTIMAL, result.message
    np.testing.assert_allclose(result.schedule_of("bat").power, [-1.5, -5.0], atol=1e-6)
    np.testing.assert_allclose(result.schedule_of("inverter").power, [-5.5, -5.0], atol=1e-6)
    np.testing.assert_allclose(result.schedule_of("asset 7").power, [-5.5, -5.0], atol=1e-6)
    assert result.costs.total == pytest.approx(-1.6, abs=1e-6)


def test_a_soft_group_capacity_is_breached_at_its_price_and_listed():
    """A 3 kW feeder consumption-capacity (soft, 10000 EUR/kW) against a hard 8 kWh target.

    ``relax-constraints: false`` keeps the target hard; FlexMeasures prices a
    group's directional capacities regardless. 8 kWh in two hours under 3 kW
    needs 2 kW of breach: spread 1 + 1 it costs 10000 per step plus 10000 on the
    peak = 30000 EUR; 2 + 0 would cost 20000 + 20000 = 40000. So the battery
    charges [4, 4] kW: breaches of 1 kW at both steps and the peak entry, 30000 EUR,
    plus 8 kWh * 0.1 = 0.8 EUR energy.
    """
    result = schedule(group_soft_capacity())  # the request: solvers.feature_examples
    assert result.status is Status.RELAXED, result.message
    np.testing.assert_allclose(result.schedule_of("bat").power, [4.0, 4.0], atol=1e-6)
    listed = [(b.constraint, b.device, b.datetime, b.amount, b.cost) for b in result.breaches]
    assert listed == [
        ("group-consumption-capacity", "feeder", T0, pytest.approx(1.0), pytest.approx(10000.0)),
        ("group-consumption-capacity", "feeder", T0 + HOUR, pytest.approx(1.0), pytest.approx(1e4)),
        ("group-consumption-capacity (peak)", "feeder", T0, pytest.approx(1.0), pytest.approx(1e4)),
    ]
    assert result.costs.breaches == pytest.approx(30000.0)
    assert result.costs.total == pytest.approx(30000.8)


def test_an_impossible_group_limit_is_named_in_the_diagnosis():
    """PV makes 4 kW behind a 3 kW inverter it cannot be curtailed below: infeasible.

    The battery could absorb it, but it is full (10 of 10 kWh): the only give is
    the inverter's hard power-capacity, by 4 - 3 = 1 kW in the PV's hour.
    """
    fm = [{**BATTERY, "soc-max": "10 kWh"}, PV, {"sensor": "inverter", "power-capacity": "3 kW"}]
    result = solve(fm, {"consumption-price": "0.1 EUR/kWh"}, 1)
    assert result.status is Status.INFEASIBLE
    conflicts = [(c.constraint, c.device, c.datetime, c.amount) for c in result.conflicts]
    assert conflicts == [("group-power-capacity", "inverter", T0, pytest.approx(1.0))]
    assert "group-power-capacity of 'inverter'" in result.message


def test_a_group_named_by_a_sensor_is_answered_with_its_aggregate():
    """The request's devices are its flex-model's sensors: bat, pv, inverter.

    The inverter's ``Schedule`` carries the group's net power [-6, -5] kW (as
    FlexMeasures saves a group's aggregate to its sensor); the PV, measured and
    not scheduled, is answered without values.
    """
    result = solve([BATTERY, PV, INVERTER], {"consumption-price": prices(0.2, 0.1)}, 2)
    context = ScheduleRequestContext("r1", "site", ("bat", "pv", "inverter"), T0, HOUR, T0)
    bat, pv, inverter = result.to_schedules(context)
    assert [r.sensor for r in (bat, pv, inverter)] == ["bat", "pv", "inverter"]
    assert bat.values == pytest.approx([-2.0, -5.0])
    assert pv.values == [] and pv.status is Status.OPTIMAL
    assert inverter.values == pytest.approx([-6.0, -5.0]) and inverter.state_of_charge == []
    names = [s["sensor"] for s in result.to_json()["schedules"]]
    assert names == ["bat", "inverter"]


def test_a_process_in_a_group_moves_away_from_a_busy_hour():
    """A 4 kW, 1-hour shiftable pump and a 2 kW load in hour 0 share a 5 kW board.

    Prices 0.1, 0.2, 0.3: freely the pump runs in hour 0 (0.4 + load 0.2 = 0.6 EUR);
    there 4 + 2 = 6 kW exceeds the board, so it runs in hour 1: 0.8 + 0.2 = 1.0 EUR.
    The board carries [2, 4, 0] kW.
    """
    pump = {"sensor": "pump", "power": "4 kW", "duration": "PT1H", "process-type": "SHIFTABLE"}
    load = {
        "sensor": "load",
        "inflexible-consumption": [{"start": START, "duration": "PT1H", "value": "2 kW"}],
    }
    board = {"group": {"sensor": "board"}}
    fc = {"consumption-price": prices(0.1, 0.2, 0.3)}
    result = solve(
        [{**pump, **board}, {**load, **board}, {"sensor": "board", "power-capacity": "5 kW"}], fc, 3
    )
    assert result.status is Status.OPTIMAL, result.message
    np.testing.assert_allclose(result.schedule_of("pump").power, [0, 4, 0], atol=1e-6)
    np.testing.assert_allclose(result.schedule_of("board").power, [2, 4, 0], atol=1e-6)
    assert result.costs.total == pytest.approx(1.0, abs=1e-6)
    free = solve([pump, load], fc, 3)
    np.testing.assert_allclose(free.schedule_of("pump").power, [4, 0, 0], atol=1e-6)
    assert free.costs.total == pytest.approx(0.6, abs=1e-6)
