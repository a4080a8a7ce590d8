"""Schedules for the output sensors a flex-model or flex-context names (pure)."""

from __future__ import annotations

import numpy as np

from schemas.flex_request import parse_site_problem
from solvers import schedule
from solvers.examples import heat_site_request
from streams.scheduling.outputs import output_series

START = "2026-06-10T00:00:00+00:00"


def _battery(**outputs: object) -> dict:
    return {
        "sensor": "bat",
        "soc-at-start": "5 kWh",
        "soc-min": "0 kWh",
        "soc-max": "10 kWh",
        "power-capacity": "5 kW",
        **outputs,
    }


def _solve(flex_model: object, flex_context: dict) -> dict[str, np.ndarray]:
    problem = parse_site_problem(flex_model, flex_context, START, "PT4H", "PT1H")
    result = schedule(problem)
    assert result.ok, result.message
    got = dict(output_series(problem, result))
    got["bat"] = result.schedule_of("bat").power
    return got


# Cheap, dear, cheap, dear: the battery charges, discharges, charges, discharges.
PRICES = [
    {"start": f"2026-06-10T0{h}:00+00:00", "duration": "PT1H", "value": f"{v} EUR/MWh"}
    for h, v in enumerate([10, 200, 10, 200])
]


def test_consumption_and_production_sensors_split_the_net_power():
    got = _solve(
        _battery(consumption={"sensor": "bat-in"}, production={"sensor": "bat-out"}),
        {"consumption-price": PRICES, "inflexible-consumption": "1 kW"},
    )
    p = got["bat"]
    assert (p > 0).any() and (p < 0).any()
    np.testing.assert_array_equal(got["bat-in"], np.maximum(p, 0.0))
    np.testing.assert_array_equal(got["bat-out"], np.minimum(p, 0.0))
    np.testing.assert_allclose(got["bat-in"] + got["bat-out"], p)


def test_one_sensor_of_a_pair_gets_the_whole_net_power():
    got = _solve(_battery(production={"sensor": "bat-out"}), {"consumption-price": PRICES})
    np.testing.assert_array_equal(got["bat-out"], got["bat"])


def test_site_aggregates_include_the_inflexible_load():
    context = {
        "consumption-price": PRICES,
        "inflexible-consumption": "1 kW",
        "inflexible-production": "3 kW",
        "aggregate-consumption": {"sensor": "site-in"},
        "aggregate-production": {"sensor": "site-out"},
        "aggregate-power": {"sensor": "site-net"},
    }
    got = _solve([_battery()], context)
    net = got["bat"] + 1.0 - 3.0
    np.testing.assert_allclose(got["site-net"], net)
    np.testing.assert_allclose(got["site-in"], np.maximum(net, 0.0))
    np.testing.assert_allclose(got["site-out"], np.minimum(net, 0.0))


def test_no_outputs_without_a_usable_schedule():
    problem = parse_site_problem(
        _battery(
            consumption={"sensor": "bat-in"},
            **{"soc-targets": [{"datetime": "2026-06-10T01:00:00+00:00", "value": "100 kWh"}]},
        ),
        {"consumption-price": PRICES, "relax-constraints": False},
        START,
        "PT4H",
        "PT1H",
    )
    result = schedule(problem)
    assert not result.ok
    assert output_series(problem, result) == []


def test_each_commodity_aggregates_its_own_devices():
    """Heat's aggregate is the heat port plus the buffer (nets to 0: heat has no connection)."""
    req = heat_site_request(16)
    context = {
        **req["flex_context"],
        "aggregate-power": {"sensor": "site-net"},
        "commodities": [{"commodity": "heat", "aggregate-consumption": {"sensor": "heat-net"}}],
    }
    problem = parse_site_problem(
        req["flex_model"], context, req["start"], req["duration"], req["resolution"]
    )
    result = schedule(problem)
    assert result.ok, result.message
    got = dict(output_series(problem, result))
    power = {s.sensor: s.power for s in result.schedules}
    heat = power["heat-pump-heat"] + power["heat-buffer"]
    electric = power["heat-pump"] + power["battery"] + power["ev"]
    np.testing.assert_allclose(got["heat-net"], heat)
    np.testing.assert_allclose(got["heat-net"], 0.0, atol=1e-6)
    np.testing.assert_allclose(got["site-net"], electric)
