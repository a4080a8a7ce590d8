"""Hand-derived optimal storage schedules."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solvers import SiteProblem, Status, StorageDevice, TimeGrid, schedule
from solvers.storage import decay_factor, soc_trajectory

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)


def grid(n, res=HOUR):
    return TimeGrid(T0, res, n)


def solve(n, devices, prices, **kw):
    result = schedule(SiteProblem(grid(n), devices, np.asarray(prices, float), **kw))
    return result


def test_two_price_day_buys_low_sells_high():
    prices = [0.1] * 12 + [0.3] * 12
    bat = StorageDevice(
        "bat", 24, soc_at_start=0, soc_max=10, consumption_capacity=5, production_capacity=5
    )
    r = solve(24, [bat], prices)
    assert r.status is Status.OPTIMAL and r.proven_optimal
    assert r.costs.total == pytest.approx(1.0 - 3.0, abs=1e-9)
    p = r.schedule_of("bat").power
    # prefer-charging-sooner: the cheap energy is bought in the first two hours.
    np.testing.assert_allclose(p[:2], [5, 5], atol=1e-6)
    assert p[:12].sum() == pytest.approx(10) and p[12:].sum() == pytest.approx(-10)


def test_target_forces_charging_in_cheapest_steps():
    bat = StorageDevice(
        "bat",
        4,
        soc_at_start=0,
        soc_max=20,
        consumption_capacity=4,
        production_capacity=0,
        soc_targets=[np.nan, np.nan, np.nan, 6, np.nan],
        prefer_charging_sooner=False,
    )
    r = solve(4, [bat], [0.3, 0.1, 0.2, 0.4])
    assert r.status is Status.OPTIMAL
    np.testing.assert_allclose(r.schedule_of("bat").power, [0, 4, 2, 0], atol=1e-7)
    assert r.costs.total == pytest.approx(0.8)
    assert r.schedule_of("bat").soc[3] == pytest.approx(6)


def test_losses_drain_an_idle_store():
    bat = StorageDevice(
        "bat",
        5,
        soc_at_start=100,
        soc_max=100,
        consumption_capacity=0,
        production_capacity=0,
        storage_efficiency=0.9,
    )
    r = solve(5, [bat], [0.1] * 5)
    assert r.status is Status.OPTIMAL
    np.testing.assert_allclose(r.schedule_of("bat").soc, 100 * 0.9 ** np.arange(6))


def test_decay_factor_integrates_a_constant_flow():
    e = np.array([0.5, 1.0])
    b = decay_factor(e)
    assert b[0] == pytest.approx(0.5 / np.log(2))
    assert b[1] == 1.0
    dev = StorageDevice("s", 1, soc_at_start=0, storage_efficiency=0.5, soc_gain=1.0)
    # d soc/dt = ln(0.5) soc + 1 over one hour from 0: (1 - 0.5) / ln 2.
    assert soc_trajectory(dev, np.zeros(1), 1.0)[1] == pytest.approx(0.5 / np.log(2))


def test_v2g_arbitrage():
    ev = StorageDevice(
        "ev",
        2,
        soc_at_start=20,
        soc_max=40,
        consumption_capacity=10,
        production_capacity=10,
        charging_efficiency=0.9,
        discharging_efficiency=0.9,
    )
    r = solve(2, [ev], [-0.1, 0.5])
    assert r.status is Status.OPTIMAL
    np.testing.assert_allclose(r.schedule_of("ev").power, [10, -10], atol=1e-7)
    assert r.costs.total == pytest.approx(-1.0 - 5.0)


def test_negative_prices_never_charge_and_discharge_at_once():
    # Cycling (charge 10, discharge 8.1 in one step) would earn 0.38; it is not allowed.
    ev = StorageDevice(
        "ev",
        2,
        soc_at_start=40,
        soc_max=40,
        consumption_capacity=10,
        production_capacity=10,
        charging_efficiency=0.9,
        discharging_efficiency=0.9,
        prefer_charging_sooner=False,
    )
    r = solve(2, [ev], [-0.1, -0.1])
    assert r.status is Status.OPTIMAL and r.used_binaries
    np.testing.assert_allclose(r.schedule_of("ev").power, [-8.1, 10], atol=1e-6)
    assert r.costs.total == pytest.approx(0.81 - 1.0)


def test_heat_buffer_with_usage_and_cop():
    buf = StorageDevice(
        "heat",
        4,
        soc_at_start=10,
        soc_max=20,
        consumption_capacity=4,
        production_capacity=0,
        charging_efficiency=3.0,
        soc_usage=6.0,
    )
    r = solve(4, [buf], [0.1, 0.4, 0.1, 0.4])
    assert r.status is Status.OPTIMAL
    p = r.schedule_of("heat").power
    np.testing.assert_allclose(p[[1, 3]], 0, atol=1e-7)
    assert r.costs.total == pytest.approx(0.1 * 14 / 3)
    assert r.schedule_of("heat").soc.min() >= -1e-6


def test_soc_recomputed_from_powers():
    bat = StorageDevice(
        "bat",
        8,
        soc_at_start=3,
        soc_max=10,
        consumption_capacity=3,
        production_capacity=3,
        charging_efficiency=0.9,
        discharging_efficiency=0.85,
        storage_efficiency=0.98,
        soc_usage=0.2,
    )
    r = solve(8, [bat], [0.1, 0.3, 0.1, 0.5, 0.2, 0.1, 0.6, 0.3])
    s = r.schedule_of("bat")
    np.testing.assert_allclose(s.soc, soc_trajectory(bat, s.power, 1.0), atol=1e-12)
    assert s.soc.max() <= 10 + 1e-6 and s.soc.min() >= -1e-6


def test_room_cuts_keep_the_milp_optimum_and_stay_out_of_the_elastic_model(monkeypatch):
    from solvers import storage
    from solvers.examples import v2g_negative_evening_problem
    from solvers.formulation import build
    from solvers.highs_backend import MIP_REL_GAP, HighsBackend

    problem = v2g_negative_evening_problem(2, 192)
    every = {d.name: np.arange(d.n) for d in problem.devices}
    with_cuts = build(problem, every).lp
    assert any(b.cut for b in with_cuts.blocks)
    assert not any(cb.block.cut and len(cb.kept) for cb in with_cuts.compile(elastic=True).blocks)
    monkeypatch.setattr(storage, "room_cuts", lambda *a, **k: None)
    without = build(problem, every).lp
    a = HighsBackend().solve(with_cuts.compile())
    b = HighsBackend().solve(without.compile())
    assert a.termination == b.termination == "optimal"
    # Both are MILPs: optimal within HiGHS's gap of the same optimum.
    assert a.objective == pytest.approx(b.objective, rel=2 * MIP_REL_GAP, abs=1e-7)


def test_negative_price_evening_gives_one_net_power_per_step():
    from solvers.examples import v2g_negative_evening_problem

    r = schedule(v2g_negative_evening_problem(4, 192))
    assert r.status is Status.OPTIMAL and r.proven_optimal
    assert r.used_binaries


def test_integers_fixed_at_a_solution_leave_an_lp_that_solution_solves():
    from solvers.examples import v2g_negative_evening_problem
    from solvers.formulation import build
    from solvers.highs_backend import HighsBackend

    problem = v2g_negative_evening_problem(2, 96)
    clp = build(problem, {d.name: np.arange(d.n) for d in problem.devices}).lp.compile()
    lb_before = clp.lb.copy()
    first = HighsBackend().solve(clp)
    fixed = clp.with_integers_fixed(first.x)
    ints = np.flatnonzero(clp.integer)
    assert len(ints) and not fixed.has_integers
    assert (fixed.lb[ints] == fixed.ub[ints]).all()
    assert np.array_equal(fixed.lb[ints], np.round(first.x[ints]))
    again = HighsBackend().solve(fixed)
    assert again.termination == "optimal"
    assert again.objective == pytest.approx(first.objective, rel=1e-9, abs=1e-7)
    assert np.array_equal(clp.lb, lb_before) and clp.has_integers  # the original is untouched


def test_power_capacity_alone_bounds_both_directions():
    """A device built with ``power_capacity=5`` and no directional capacities.

    Hour 0 at 0.3 EUR/kWh, hour 1 at -0.1: from 10 of 20 kWh the battery sells
    what it can in hour 0 and buys what it can in hour 1. Power capacity bounds
    both: -5 kW then +5 kW, 10 -> 5 -> 10 kWh; -(5 * 0.3) + 5 * -0.1 = -2.0 EUR.
    Unbounded directions would sell all 10 kWh and buy 20: -3.0 - 2.0 = -5.0 EUR.
    """
    bat = StorageDevice("bat", 2, soc_at_start=10, soc_max=20, power_capacity=5)
    np.testing.assert_allclose(bat.consumption_capacity, [5, 5])
    np.testing.assert_allclose(bat.production_capacity, [5, 5])
    r = solve(2, [bat], [0.3, -0.1])
    assert r.status is Status.OPTIMAL, r.message
    np.testing.assert_allclose(r.schedule_of("bat").power, [-5, 5], atol=1e-6)
    np.testing.assert_allclose(r.schedule_of("bat").soc, [10, 5, 10], atol=1e-6)
    assert r.costs.total == pytest.approx(-2.0, abs=1e-9)
    narrower = StorageDevice("x", 2, soc_at_start=0, power_capacity=5, consumption_capacity=3)
    np.testing.assert_allclose(narrower.consumption_capacity, [3, 3])
