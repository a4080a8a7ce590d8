"""Peak pricing (site-peak-consumption/-production and their prices), hand-derived cases."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.errors import InputError
from schemas.flex_request import parse_site_problem
from solvers import schedule
from solvers.feature_examples import PEAK_BATTERY as BATTERY
from solvers.peaks import peak_charges, periods

START = datetime(2026, 6, 1, tzinfo=UTC)


def _series(values, unit):
    return [
        {"start": f"2026-06-01T{h:02d}:00+00:00", "duration": "PT1H", "value": f"{v} {unit}"}
        for h, v in enumerate(values)
    ]


def _solve(context: dict, model: dict | None = None):
    problem = parse_site_problem(model or BATTERY, context, START, "PT4H", "PT1H")
    result = schedule(problem)
    assert result.ok, result.message
    net = result.schedule_of("battery").power + problem.inflexible_power
    return result, net


def test_a_peak_that_is_cheaper_to_shave_than_to_pay_is_shaved():
    context = {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-consumption": _series([2, 2, 10, 2], "kW"),
        "site-peak-consumption-price": "50000 EUR/MW",  # 50 EUR per kW of new peak
    }
    result, net = _solve(context)
    # 5 kWh in the battery and 5 kW of power: the 10 kW step comes down to 5 kW.
    assert net.max() == pytest.approx(5.0, abs=1e-6)
    assert result.costs.peak_consumption == pytest.approx(250.0, abs=1e-4)
    costs = result.costs
    assert costs.total == pytest.approx(costs.energy + 250.0, abs=1e-6)


def test_the_peak_already_reached_is_free_and_only_the_new_part_is_charged():
    context = {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-consumption": _series([2, 2, 10, 2], "kW"),
        "site-peak-consumption": "8 kW",
        "site-peak-consumption-price": "50 EUR/kW",
    }
    result, net = _solve(context)
    assert net.max() <= 8.0 + 1e-6
    assert result.costs.peak_consumption == pytest.approx(0.0, abs=1e-6)


def test_a_peak_the_battery_cannot_shave_to_the_baseline_is_paid_above_it():
    small = {**BATTERY, "soc-at-start": "2 kWh"}  # only 2 kWh to shave with
    context = {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-consumption": _series([2, 2, 10, 2], "kW"),
        "site-peak-consumption": "3 kW",
        "site-peak-consumption-price": "10 EUR/kW",
    }
    result, net = _solve(context, small)
    # The battery charges in steps 0 and 1 up to the new peak P (no extra peak cost) and
    # discharges 10 - P in step 2: 10 - P <= 2 + 2 (P - 2) and 10 - P <= 5 kW, so P = 5.
    assert net.max() == pytest.approx(5.0, abs=1e-6)
    assert result.costs.peak_consumption == pytest.approx(20.0, abs=1e-4)


def test_a_production_peak_is_charged_on_export():
    context = {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-production": _series([0, 8, 0, 0], "kW"),
        "site-peak-production-price": "20 EUR/kW",
    }
    empty = {**BATTERY, "soc-at-start": "0 kWh"}
    result, net = _solve(context, empty)
    assert (-net).max() == pytest.approx(3.0, abs=1e-6)  # 5 kW into the battery
    assert result.costs.peak_production == pytest.approx(60.0, abs=1e-4)


def test_peak_prices_per_energy_or_negative_are_refused_naming_the_field():
    for bad in ("0.1 EUR/kWh", "-5 EUR/kW"):
        with pytest.raises(InputError) as err:
            parse_site_problem(
                BATTERY,
                {"consumption-price": "0.1 EUR/kWh", "site-peak-consumption-price": bad},
                START,
                "PT4H",
                "PT1H",
            )
        assert err.value.field == "site-peak-consumption-price"


def test_a_changing_price_or_baseline_splits_the_window_into_periods():
    baseline = np.array([0.0, 0.0, 5.0, 5.0, np.nan, 5.0])
    price = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    assert [g.tolist() for g in periods(baseline, price)] == [[0, 1], [2], [3], [5]]
    flow = np.array([3.0, 4.0, 6.0, 5.0, 99.0, 7.0])
    charges = peak_charges(flow, baseline, price)
    assert [(c.first_step, c.peak_step, c.amount, c.cost) for c in charges] == [
        (0, 1, 4.0, 4.0),
        (2, 2, 1.0, 1.0),
        (5, 5, 2.0, 4.0),
    ]


@settings(max_examples=25, deadline=None)
@given(
    load=st.lists(st.integers(0, 12), min_size=4, max_size=4),
    baseline=st.integers(0, 12),
    price=st.integers(0, 100),
)
def test_the_reported_peak_charge_is_what_the_schedule_costs(load, baseline, price):
    context = {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-consumption": _series(load, "kW"),
        "site-peak-consumption": f"{baseline} kW",
        "site-peak-consumption-price": f"{price} EUR/kW",
    }
    result, net = _solve(context)
    want = price * max(0.0, float(net.max()) - baseline)
    assert result.costs.peak_consumption == pytest.approx(want, abs=1e-4)
    # Never worse than doing nothing with the battery (the optimum includes that schedule).
    idle = 0.1 * sum(load) + price * max(0, max(load) - baseline)
    assert result.costs.total <= idle + 1e-4
