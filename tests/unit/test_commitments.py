"""Commitments in the flex-context (FlexMeasures' fields): hand-derived cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_peak_pricing import BATTERY, START, _series, _solve

from schemas.errors import InputError
from schemas.flex_problem import Commitment
from schemas.flex_request import parse_site_problem
from solvers import schedule
from solvers.commitments import commitment_cost
from solvers.feature_examples import commitment_congestion


def test_a_congestion_commitment_keeps_consumption_under_its_baseline():
    # FlexMeasures' own example: 0.25 EUR for every kW over the committed level (6 kW in
    # hour 2 only), per step; load [2, 2, 9, 2] kW; the request: solvers.feature_examples.
    problem = commitment_congestion()
    result = schedule(problem)
    assert result.ok, result.message
    net = result.schedule_of("battery").power + problem.inflexible_power
    # Worth it: 3 kWh discharged in step 2 and charged back elsewhere costs nothing extra
    # at a flat price, and avoids 3 kW x 0.25 EUR.
    assert net[2] == pytest.approx(6.0, abs=1e-6)
    assert result.costs.commitments == {"congestion pricing": pytest.approx(0.0, abs=1e-6)}


def test_a_market_position_is_followed_when_deviating_costs_more_than_it_saves():
    # A day-ahead position: import 3 kW each hour; imbalance costs 1 EUR/kWh short, pays
    # nothing long. The battery covers the load above the position.
    context = {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-consumption": _series([1, 3, 6, 3], "kW"),
        "commitments": [
            {"name": "day-ahead", "baseline": "3 kW", "up-price": "1 EUR/kWh",
             "down-price": "-1 EUR/kWh"}
        ],
    }  # fmt: skip
    result, net = _solve(context)
    np.testing.assert_allclose(net, [3.0, 3.0, 3.0, 3.0], atol=1e-6)
    assert result.costs.commitments["day-ahead"] == pytest.approx(0.0, abs=1e-6)
    assert result.costs.total == pytest.approx(result.costs.energy, abs=1e-6)


def test_a_reward_for_going_below_the_position_above_the_penalty_is_priced_exactly():
    # down-price > up-price: without a binary the LP would raise both deviations at once.
    context = {
        "consumption-price": "0 EUR/kWh",
        "inflexible-consumption": _series([2, 2, 2, 2], "kW"),
        "commitments": [
            {"name": "odd", "baseline": "2 kW", "up-price": "1 EUR/kW", "down-price": "3 EUR/kW"}
        ],
    }  # fmt: skip
    result, net = _solve(context)
    # Going down pays 3 per kW and step, up costs 1: charge 5 kW in the first step
    # (cost 5) to hold 10 kWh, then discharge 5 kW in two steps (reward 2 x 5 x 3 = 30).
    reported = result.costs.commitments["odd"]
    assert reported == pytest.approx(commitment_cost(net, _odd()), abs=1e-6)
    assert reported == pytest.approx(-25.0, abs=1e-6)


def _odd() -> Commitment:
    n = 4
    return Commitment("odd", np.full(n, 2.0), np.full(n, 1.0), np.full(n, 3.0))


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ({"baseline": "1 kW", "up-price": "1 EUR/MW"}, "commitments[0].name", "name"),
        ({"name": "x", "up-price": "1 EUR/MW"}, "commitments[0].baseline", "requires a baseline"),
        ({"name": "x", "baseline": "1 kW"}, "commitments[0].up-price", "at least one"),
        ({"name": "x", "baseline": "1 kW", "up-price": "1 EUR/MW", "sensors": [3]},
         "commitments[0].sensors", "does not support yet"),
        ({"name": "x", "baseline": "1 kW", "up-price": "1 EUR/MW", "commodity": "gas"},
         "commitments[0].commodity", "electricity"),
        ({"name": "x", "baseline": "1 kW", "up-prise": "1 EUR/MW"}, "commitments[0].up-prise",
         "up-price"),
    ],
)  # fmt: skip
def test_bad_commitments_are_refused_naming_the_field(spec, field, says):
    context = {"consumption-price": "0.1 EUR/kWh", "commitments": [spec]}
    with pytest.raises(InputError, match=says) as err:
        parse_site_problem(BATTERY, context, START, "PT4H", "PT1H")
    assert err.value.field == field


@settings(max_examples=25, deadline=None)
@given(
    load=st.lists(st.integers(0, 8), min_size=4, max_size=4),
    baseline=st.integers(-3, 8),
    up=st.integers(0, 500),
    down=st.integers(-500, 500),
)
def test_the_reported_commitment_cost_is_what_the_schedule_costs(load, baseline, up, down):
    context = {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-consumption": _series(load, "kW"),
        "commitments": [
            {"name": "c", "baseline": f"{baseline} kW", "up-price": f"{up} EUR/MW",
             "down-price": f"{down} EUR/MW"}
        ],
    }  # fmt: skip
    result, net = _solve(context)
    c = Commitment("c", np.full(4, float(baseline)), np.full(4, up / 1000), np.full(4, down / 1000))
    assert result.costs.commitments["c"] == pytest.approx(commitment_cost(net, c), abs=1e-6)
    # Never worse than leaving the battery idle (that schedule is feasible).
    idle_net = np.array(load, dtype=float)
    idle = 0.1 * idle_net.sum() + commitment_cost(idle_net, c)
    assert result.costs.total <= idle + 1e-6
