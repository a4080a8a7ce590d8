"""Property tests on random instances against an independent scipy.optimize.milp model.

The reference (``milp_reference``) gives every storage step a charge/discharge
binary and every site step an import/export binary (no per-instance shortcuts),
so it checks the engine's LP-first strategy as well as its formulation.
"""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from milp_reference import reference_cost

from solvers import BreachPrices, SiteProblem, Status, StorageDevice, TimeGrid, schedule
from solvers.highs_backend import MIP_REL_GAP
from solvers.storage import soc_trajectory


def _gap(result) -> float:
    """Relative tolerance of a cost: tight for an LP, HiGHS's MILP gap after binaries."""
    return MIP_REL_GAP if result.used_binaries else 1e-6


T0 = datetime(2024, 1, 1, tzinfo=UTC)
TOL = 1e-6


# Absolute tolerance 1e-5: the reference (scipy/HiGHS defaults) accepts 1e-6 infeasibility.


@st.composite
def instances(draw, soft=False):
    n = draw(st.integers(2, 8))
    dt = draw(st.sampled_from([0.25, 1.0]))
    grid = TimeGrid(T0, timedelta(hours=dt), n)
    # Three decimals: values far below the reference's 1e-6 tolerances only test its noise.
    floats = lambda lo, hi: st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, 3))  # noqa: E731
    prices = np.array(draw(st.lists(floats(-0.2, 0.5), min_size=n, max_size=n)))
    spread = draw(st.sampled_from(["equal", "lower", "random"]))
    if spread == "equal":
        pp = prices.copy()
    elif spread == "lower":
        pp = prices - np.array(draw(st.lists(floats(0, 0.2), min_size=n, max_size=n)))
    else:
        pp = np.array(draw(st.lists(floats(-0.2, 0.5), min_size=n, max_size=n)))
    devices = []
    for i in range(draw(st.integers(1, 2))):
        soc_max = draw(floats(5, 50))
        targets = np.full(n + 1, np.nan)
        if draw(st.booleans()):
            targets[draw(st.integers(1, n))] = draw(floats(0, soc_max * 1.1))
        minima = np.full(n + 1, np.nan)
        if draw(st.booleans()):
            minima[draw(st.integers(1, n))] = draw(floats(0, soc_max))
        devices.append(
            StorageDevice(
                f"d{i}",
                n,
                soc_at_start=draw(floats(0, soc_max)),
                soc_min=0.0,
                soc_max=soc_max,
                soc_minima=minima,
                soc_targets=targets,
                consumption_capacity=draw(floats(0, 20)),
                production_capacity=draw(floats(0, 20)),
                charging_efficiency=draw(floats(0.7, 1.2)),
                discharging_efficiency=draw(floats(0.7, 1.0)),
                storage_efficiency=draw(floats(0.9, 1.0)),
                soc_usage=draw(floats(0, 1)),
                prefer_charging_sooner=False,
            )
        )
    cap = draw(st.one_of(st.just(np.nan), floats(5, 40)))
    inflex = np.array(draw(st.lists(floats(-10, 10), min_size=n, max_size=n)))
    breach = BreachPrices(50.0, 50.0) if soft else BreachPrices()
    return SiteProblem(
        grid,
        devices,
        prices,
        production_price=pp,
        site_power_capacity=cap,
        inflexible_power=inflex,
        breach_prices=breach,
    )


def check_schedule(problem, result):
    dt = problem.grid.dt_hours
    net = problem.inflexible_power.copy()
    for dev, s in zip(problem.devices, result.schedules, strict=True):
        np.testing.assert_allclose(s.soc, soc_trajectory(dev, s.power, dt), atol=1e-9)
        assert s.soc[0] == pytest.approx(dev.soc_at_start)
        assert np.all(s.soc[1:] >= dev.soc_min[1:] - TOL)
        assert np.all(s.soc[1:] <= dev.soc_max[1:] + TOL)
        assert np.all(s.power <= dev.consumption_capacity + TOL)
        assert np.all(-s.power <= dev.production_capacity + TOL)
        if problem.breach_prices.soc_minima is None:
            ok = np.isnan(dev.soc_targets) | (np.abs(s.soc - dev.soc_targets) <= TOL)
            assert ok.all()
        net = net + s.power
    cap = problem.site_power_capacity
    assert np.all(np.isnan(cap) | (np.abs(net) <= cap + TOL))


SETTINGS = settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(instances())
def test_hard_instances_match_the_reference(problem):
    result = schedule(problem)
    ref = reference_cost(problem)
    if ref is None or result.status is Status.INFEASIBLE:
        assert result.status is Status.INFEASIBLE
        assert result.conflicts and not result.schedules
        # The reference's tolerances are looser (1e-6): it may accept a tiny breach.
        assert ref is None or sum(c.amount for c in result.conflicts) < 1e-5
        return
    assert result.status is Status.OPTIMAL, result.message
    check_schedule(problem, result)
    assert result.costs.total == pytest.approx(ref, rel=_gap(result), abs=1e-5)


@SETTINGS
@given(instances(soft=True))
def test_soft_instances_match_the_reference_and_list_breaches(problem):
    result = schedule(problem)
    ref = reference_cost(problem)
    hard = SiteProblem(
        problem.grid,
        problem.devices,
        problem.consumption_price,
        problem.production_price,
        problem.site_power_capacity,
        inflexible_power=problem.inflexible_power,
    )
    if ref is None or result.status is Status.INFEASIBLE:
        assert result.status is Status.INFEASIBLE and result.conflicts
        assert ref is None or sum(c.amount for c in result.conflicts) < 1e-5
        return
    assert result.status in (Status.OPTIMAL, Status.RELAXED), result.message
    check_schedule(problem, result)
    assert result.costs.total == pytest.approx(ref, rel=_gap(result), abs=1e-5)
    if reference_cost(hard) is None:
        assert result.status is Status.RELAXED and result.breaches
    if result.status is Status.RELAXED:
        assert all(b.amount > 0 and b.cost is not None for b in result.breaches)
