"""Site-level semantics: PV, capacities, relaxation with breaches, infeasibility."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solvers import BreachPrices, SiteProblem, Status, StorageDevice, TimeGrid, schedule
from solvers.formulation import build

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def grid(n):
    return TimeGrid(T0, timedelta(hours=1), n)


def battery(n, **kw):
    args = dict(soc_at_start=0, soc_max=10, consumption_capacity=5, production_capacity=5)
    args.update(kw)
    return StorageDevice("bat", n, **args)


def test_pv_surplus_is_stored_at_the_consumption_price_it_avoids():
    # Step 0: 5 kW PV surplus sold at 0.05, or stored; step 1: 5 kW load bought at 0.3.
    prob = SiteProblem(
        grid(2),
        [battery(2)],
        np.array([0.3, 0.3]),
        production_price=np.array([0.05, 0.05]),
        inflexible_power=np.array([-5.0, 5.0]),
    )
    r = schedule(prob)
    assert r.status is Status.OPTIMAL
    np.testing.assert_allclose(r.schedule_of("bat").power, [5, -5], atol=1e-7)
    assert r.costs.total == pytest.approx(0.0, abs=1e-9)


def test_production_price_above_consumption_price_needs_no_fake_flows():
    # Selling pays more than buying: without the site binary the LP would buy and sell at once.
    prob = SiteProblem(
        grid(2),
        [battery(2)],
        np.array([0.1, 0.1]),
        production_price=np.array([0.2, 0.2]),
        site_power_capacity=100.0,
    )
    r = schedule(prob)
    assert r.status is Status.OPTIMAL
    # Charge 5 (0.5) then discharge 5 (earn 1.0): -0.5.
    assert r.costs.total == pytest.approx(-0.5)


def test_site_capacity_limits_the_battery():
    prob = SiteProblem(
        grid(4),
        [battery(4)],
        np.array([0.1, 0.1, 0.5, 0.5]),
        site_power_capacity=3.0,
        inflexible_power=np.array([1.0, 1, 1, 1]),
    )
    r = schedule(prob)
    net = r.schedule_of("bat").power + 1.0
    assert r.status is Status.OPTIMAL
    assert np.all(np.abs(net) <= 3 + 1e-6)
    # Steps 2 and 3 cost the same; prefer-charging-sooner also means discharging later.
    np.testing.assert_allclose(r.schedule_of("bat").power, [2, 2, 0, -4], atol=1e-7)


def test_unreachable_target_is_infeasible_with_the_conflict_named():
    bat = battery(4, consumption_capacity=1, soc_targets=[np.nan, np.nan, 5, np.nan, np.nan])
    r = schedule(SiteProblem(grid(4), [bat], np.full(4, 0.1)))
    assert r.status is Status.INFEASIBLE
    assert not r.schedules and not r.ok
    (c,) = r.conflicts
    assert (c.constraint, c.device, c.datetime, c.unit) == (
        "soc-targets",
        "bat",
        T0 + 2 * timedelta(hours=1),
        "kWh",
    )
    assert c.amount == pytest.approx(3.0)
    assert r.to_json()["breaches"][0]["constraint"] == "soc-targets"


def test_relaxed_target_lists_the_breach_and_its_cost():
    bat = battery(4, consumption_capacity=1, soc_targets=[np.nan, np.nan, 5, np.nan, np.nan])
    r = schedule(
        SiteProblem(
            grid(4),
            [bat],
            np.full(4, 0.1),
            breach_prices=BreachPrices(soc_minima=1000.0, soc_maxima=1000.0),
        )
    )
    assert r.status is Status.RELAXED and r.proven_optimal
    (b,) = r.breaches
    assert b.constraint == "soc-targets" and b.amount == pytest.approx(3.0)
    assert b.cost == pytest.approx(3000.0)
    assert r.costs.breaches == pytest.approx(3000.0)
    assert r.costs.total == pytest.approx(r.costs.energy + 3000.0)


def test_soft_site_capacity_is_breached_only_when_needed():
    # A 6 kW inflexible load against a 4 kW contracted capacity (soft), hard fuse 10 kW.
    bat = battery(2, soc_at_start=0)
    prob = SiteProblem(
        grid(2),
        [bat],
        np.array([0.1, 0.1]),
        site_power_capacity=10.0,
        site_consumption_capacity=4.0,
        inflexible_power=np.array([6.0, 0.0]),
        breach_prices=BreachPrices(site_consumption=np.full(2, 100.0)),
    )
    r = schedule(prob)
    assert r.status is Status.RELAXED
    # Priced per step and once more at the peak (as FlexMeasures does).
    b, peak = r.breaches
    assert b.constraint == "site-consumption-capacity" and b.amount == pytest.approx(2.0)
    assert b.datetime == T0 and b.cost == pytest.approx(200.0)
    assert peak.constraint == "site-consumption-capacity (peak)" and peak.cost == pytest.approx(
        200.0
    )
    assert r.costs.breaches == pytest.approx(400.0)


def test_breach_columns_only_where_a_breach_can_happen():
    """Soft capacity at the fuse (the default) or above what the site can draw: no columns.

    Step 0: 4 kW contracted under a 10 kW fuse, 6 kW load + 5 kW battery: breachable.
    Step 1: 9 kW contracted, no load: at most 5 kW can flow, nothing to price.
    Step 2: the contracted capacity equals the fuse, which already holds hard.
    """
    prob = SiteProblem(
        grid(3),
        [battery(3)],
        np.array([0.1, 0.1, 0.1]),
        site_power_capacity=10.0,
        site_consumption_capacity=np.array([4.0, 9.0, 10.0]),
        inflexible_power=np.array([6.0, 0.0, 0.0]),
        breach_prices=BreachPrices(site_consumption=np.full(3, 100.0)),
    )
    blocks = {b.name: b.size for b in build(prob).lp.compile().columns}
    assert blocks["site.site-consumption-capacity.breach"] == 1
    r = schedule(prob)
    assert r.status is Status.RELAXED
    assert [(b.datetime, b.amount) for b in r.breaches][:1] == [(T0, pytest.approx(2.0))]


def test_hard_device_limit_conflict_is_infeasible_even_when_relaxing():
    # soc-at-start far below soc-min and too little power to get there.
    bat = battery(2, soc_at_start=0, soc_min=8, consumption_capacity=1)
    prob = SiteProblem(
        grid(2), [bat], np.array([0.1, 0.1]), breach_prices=BreachPrices(1000.0, 1000.0)
    )
    r = schedule(prob)
    assert r.status is Status.INFEASIBLE
    assert {c.constraint for c in r.conflicts} == {"soc-min"}
    assert "soc-min" in r.message


def test_several_devices_in_input_order():
    n = 3
    a = StorageDevice(
        "a", n, soc_at_start=0, soc_max=5, consumption_capacity=5, production_capacity=5
    )
    b = StorageDevice(
        "b", n, soc_at_start=5, soc_max=5, consumption_capacity=5, production_capacity=5
    )
    r = schedule(SiteProblem(grid(n), [b, a], np.array([0.3, 0.1, 0.3])))
    assert [s.sensor for s in r.schedules] == ["b", "a"]
    assert len(r.schedule_of("a").soc) == n + 1
