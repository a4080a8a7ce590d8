"""The decoupled first stage (site limits lifted, then restored) reaches the same optimum."""

from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solvers import SiteProblem, StorageDevice, TimeGrid, schedule
from solvers.backend import Termination
from solvers.engine import DECOUPLE_MIN_DEVICES, _coupling_columns
from solvers.examples import START, battery_fleet_problem
from solvers.formulation import build
from solvers.highs_backend import HighsBackend


def _site_columns(form):
    return np.concatenate([form.site.consumption.index, form.site.production.index])


def _both(problem: SiteProblem):
    form = build(problem)
    plain = form.lp.compile()
    staged = form.lp.compile()
    staged.staged_columns = _site_columns(form)
    return staged, HighsBackend().solve(plain), HighsBackend().solve(staged)


@settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    k=st.integers(2, 6),
    n=st.integers(12, 48),
    seed=st.integers(0, 10_000),
    share=st.floats(0.1, 1.2),
)
def test_staged_solve_matches_the_direct_solve(k, n, seed, share):
    problem = battery_fleet_problem(k, n=n, seed=seed)
    problem.site_power_capacity = problem.site_power_capacity * share / 0.4
    staged, plain, ours = _both(problem)
    # A tight connection may make the end minima unreachable: both say so.
    assert ours.termination is plain.termination
    if plain.termination is Termination.INFEASIBLE:
        return
    assert plain.termination is Termination.OPTIMAL
    assert abs(ours.objective - plain.objective) <= 1e-7 * max(1.0, abs(plain.objective))
    # The restored limits hold in the staged solution.
    cols = staged.staged_columns
    assert np.all(ours.x[cols] <= staged.ub[cols] + 1e-7)
    assert np.all(ours.x[cols] >= staged.lb[cols] - 1e-7)


def test_unbounded_first_stage_still_reaches_the_optimum():
    # Without the connection's limit the store would charge without end at a negative price.
    n = 4
    store = StorageDevice("store", n, soc_at_start=0.0)
    problem = SiteProblem(
        TimeGrid(START, timedelta(hours=1), n),
        [store],
        np.full(n, -0.1),
        site_power_capacity=10.0,
    )
    _, plain, ours = _both(problem)
    assert plain.termination is Termination.OPTIMAL
    assert ours.termination is Termination.OPTIMAL
    assert abs(ours.objective - plain.objective) <= 1e-9
    assert abs(ours.objective - (-0.1 * 10.0 * n)) <= 1e-9


def test_fleets_use_the_staged_solve_and_small_sites_do_not():
    small = battery_fleet_problem(3, n=96)
    assert _coupling_columns(small, build(small)) is None
    fleet = battery_fleet_problem(DECOUPLE_MIN_DEVICES, n=256)
    form = build(fleet)
    np.testing.assert_array_equal(_coupling_columns(fleet, form), _site_columns(form))


def test_fleet_schedule_costs_the_same_as_without_the_stage(monkeypatch):
    fleet = battery_fleet_problem(DECOUPLE_MIN_DEVICES, n=256, seed=3)
    staged = schedule(fleet)
    monkeypatch.setattr("solvers.engine._coupling_columns", lambda problem, form: None)
    direct = schedule(fleet)
    assert staged.status is direct.status
    assert abs(staged.costs.total - direct.costs.total) <= 1e-6 * max(1.0, abs(direct.costs.total))
