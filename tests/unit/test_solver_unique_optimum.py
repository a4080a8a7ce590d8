"""The tie-break is skipped only where the first LP optimum is provably the only one."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import solvers.highs_backend as backend
from solvers import schedule
from solvers.examples import battery_problem
from solvers.formulation import build
from solvers.highs_backend import HighsBackend, _unique_optimum


def _first_solve(problem):
    clp = build(problem).lp.compile()
    raw = HighsBackend().solve(clp)
    return raw.handle[0], clp


def test_flat_prices_leave_ties_and_varied_prices_do_not():
    # Lossless under a flat price: any charge moved in time costs the same.
    flat = battery_problem(24)
    flat.consumption_price[:] = 0.1
    flat.production_price[:] = 0.1
    bat = flat.devices[0]
    for name in ("charging_efficiency", "discharging_efficiency", "storage_efficiency"):
        getattr(bat, name)[:] = 1.0
    assert not _unique_optimum(*_first_solve(flat))
    assert _unique_optimum(*_first_solve(battery_problem(96)))


@settings(
    max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(prices=st.lists(st.sampled_from([-0.05, 0.0, 0.1, 0.1, 0.2, 0.3]), min_size=4, max_size=16))
def test_skipping_the_tie_break_changes_no_schedule(prices):
    n = len(prices)
    problem = battery_problem(n)
    problem.consumption_price[:] = prices
    problem.production_price[:] = prices
    skipped = schedule(problem)
    saved = backend._unique_optimum
    backend._unique_optimum = lambda h, lp: False
    try:
        forced = schedule(problem)
    finally:
        backend._unique_optimum = saved
    assert skipped.status is forced.status
    assert abs(skipped.costs.total - forced.costs.total) <= 1e-6
    # The tie-breaking solve may use its face's rounding slack (a few 1e-6 kW), no more.
    for a, b in zip(skipped.schedules, forced.schedules, strict=True):
        np.testing.assert_allclose(a.power, b.power, atol=1e-4)
