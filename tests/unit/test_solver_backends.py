"""Both back ends solve the same formulation to the same objective; status mapping."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.errors import InputError
from schemas.flex_problem import DeviceGroup
from schemas.flex_request import parse_site_problem
from solvers import (
    BreachPrices,
    ProcessDevice,
    ProcessType,
    SiteProblem,
    Status,
    StorageDevice,
    TimeGrid,
    schedule,
)
from solvers.examples import battery_problem, ev_fleet_problem, heat_site_request
from solvers.formulation import build
from solvers.lp import LinearProgram

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _target_problem():
    n = 6
    bat = StorageDevice(
        "bat",
        n,
        soc_at_start=0,
        soc_max=10,
        consumption_capacity=2,
        production_capacity=2,
        soc_targets=np.r_[np.full(n, np.nan), 9],
    )
    return SiteProblem(
        TimeGrid(T0, timedelta(hours=1), n),
        [bat],
        np.linspace(0.1, 0.3, n),
        breach_prices=BreachPrices(1.0, 1.0),
    )


def _negative_prices():
    bat = StorageDevice(
        "ev",
        2,
        soc_at_start=40,
        soc_max=40,
        consumption_capacity=10,
        production_capacity=10,
        charging_efficiency=0.9,
        discharging_efficiency=0.9,
    )
    return SiteProblem(TimeGrid(T0, timedelta(hours=1), 2), [bat], np.array([-0.1, -0.1]))


def _process_mix():
    n = 8
    prices = np.array([0.5, 0.1, 0.4, 0.2, 0.05, 0.3, 0.6, 0.1])
    devs = [
        ProcessDevice("shift", n, 5.0, 3, ProcessType.SHIFTABLE),
        ProcessDevice("brk", n, 4.0, 2, ProcessType.BREAKABLE),
        StorageDevice(
            "bat", n, soc_at_start=5, soc_max=10, consumption_capacity=4, production_capacity=4
        ),
    ]
    return SiteProblem(TimeGrid(T0, timedelta(hours=1), n), devs, prices, site_power_capacity=9.0)


def _heat_site():
    """Heat pump, heat buffer, battery and EV (two commodities, a coupling) over 12 hours."""
    r = heat_site_request(48)
    return parse_site_problem(
        r["flex_model"], r["flex_context"], r["start"], r["duration"], r["resolution"]
    )


def _group_and_modes():
    """A battery and an off-or-2-to-3-kW heater behind a soft 3 kW feeder limit."""
    n = 6
    prices = np.array([0.1, 0.3, 0.2, 0.4, 0.1, 0.2])
    devs = [
        StorageDevice(
            "bat", n, soc_at_start=2, soc_max=8, consumption_capacity=4, production_capacity=4,
            soc_targets=np.r_[np.full(n, np.nan), 6],
        ),
        StorageDevice(
            "heat", n, soc_at_start=1, soc_max=4, consumption_capacity=3, production_capacity=0,
            soc_usage=1.0, operation_modes=((0, 0), (2, 3)),
        ),
    ]  # fmt: skip
    feeder = DeviceGroup(
        "feeder", n, ["bat", "heat"], power_capacity=6.0, consumption_capacity=3.0,
        consumption_breach_price=np.full(n, 0.5),
    )  # fmt: skip
    return SiteProblem(TimeGrid(T0, timedelta(hours=1), n), devs, prices, groups=[feeder])


SCENARIOS = {
    "heat-site": _heat_site,
    "battery-96": lambda: battery_problem(96),
    "ev-fleet-5": lambda: ev_fleet_problem(5, n=96),
    "relaxed-target": _target_problem,
    "negative-prices": _negative_prices,
    "process-mix": _process_mix,
    "group-and-modes": _group_and_modes,
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_highspy_and_pyomo_agree(name):
    problem = SCENARIOS[name]()
    a = schedule(problem, solver="highs")
    b = schedule(problem, solver="pyomo:appsi_highs")
    assert a.status == b.status
    assert a.status in (Status.OPTIMAL, Status.RELAXED)
    assert b.costs.total == pytest.approx(a.costs.total, rel=1e-6, abs=1e-6)


def test_pyomo_reports_infeasibility_the_same_way():
    bat = StorageDevice(
        "bat",
        2,
        soc_at_start=0,
        soc_max=10,
        consumption_capacity=1,
        production_capacity=1,
        soc_targets=[np.nan, np.nan, 5],
    )
    problem = SiteProblem(TimeGrid(T0, timedelta(hours=1), 2), [bat], np.array([0.1, 0.1]))
    a = schedule(problem)
    b = schedule(problem, solver="pyomo:appsi_highs")
    assert a.status is b.status is Status.INFEASIBLE
    assert [c.constraint for c in a.conflicts] == [c.constraint for c in b.conflicts]


def test_pyomo_model_names_the_blocks():
    from solvers.pyomo_backend import build_model

    clp = build(_target_problem()).lp.compile()
    m, _ = build_model(clp)
    assert hasattr(m, "bat_soc_targets") and hasattr(m, "bat_dynamics") and hasattr(m, "bat_charge")


def test_unknown_solver_names_are_rejected():
    with pytest.raises(InputError, match="solver"):
        schedule(_negative_prices(), solver="gurobi")


def test_unknown_status_strings_map_to_unknown():
    assert Status.parse("optimal") is Status.OPTIMAL
    assert Status.parse("something new") is Status.UNKNOWN


def test_time_limit_result_says_whether_optimality_was_proven():
    r = schedule(battery_problem(96), time_limit=30.0)
    assert r.status is Status.OPTIMAL and r.proven_optimal
    assert r.to_json()["optimality-proven"] is True


def test_lp_builder_folds_hard_bounds_and_keeps_soft_rows():
    lp = LinearProgram()
    x = lp.add_columns("x", 3)
    lp.add_bounds("hard", x.index, [1.0, np.nan, 2.0], None, constraint="c")
    lp.add_bounds(
        "soft",
        x.index,
        None,
        [5.0, 5.0, np.nan],
        constraint="s",
        soft=__import__("solvers.lp", fromlist=["Soft"]).Soft(None, 7.0),
    )
    clp = lp.compile()
    np.testing.assert_allclose(clp.lb, [1.0, 0.0, 2.0, 0.0, 0.0])
    assert clp.num_row == 2 and list(clp.c[3:]) == [7.0, 7.0]
    e = lp.compile(elastic=True)
    assert e.num_row == 4 and list(e.c[:3]) == [0, 0, 0]


def test_lp_builder_adds_costs_to_the_block_given():
    lp = LinearProgram()
    a = lp.add_columns("a", 2, cost=1.0)
    b = lp.add_columns("b", 3)
    lp.add_cost(b, 2.0)
    lp.add_cost(a, np.array([0.5, 0.0]), secondary=True)
    clp = lp.compile()
    assert clp.c.tolist() == [1.0, 1.0, 2.0, 2.0, 2.0]
    assert clp.c2.tolist() == [0.5, 0.0, 0.0, 0.0, 0.0]
    stranger = LinearProgram().add_columns("x", 2)  # the first column of "a", another block
    with pytest.raises(ValueError):
        lp.add_cost(stranger, 1.0)
