"""The tie-break is skipped where the first LP optimum is provably the only one.

Elsewhere the columns the optimum pins to their bounds are fixed before it runs.
"""

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


def _lossless_flat(n: int):
    # Lossless under a flat price: any charge moved in time costs the same.
    flat = battery_problem(n)
    flat.consumption_price[:] = 0.1
    flat.production_price[:] = 0.1
    bat = flat.devices[0]
    for name in ("charging_efficiency", "discharging_efficiency", "storage_efficiency"):
        getattr(bat, name)[:] = 1.0
    return flat


def test_flat_prices_leave_ties_and_varied_prices_do_not():
    assert not _unique_optimum(*_first_solve(_lossless_flat(24)))
    assert _unique_optimum(*_first_solve(battery_problem(96)))


@settings(
    max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(prices=st.lists(st.sampled_from([-0.05, 0.0, 0.1, 0.1, 0.2, 0.3]), min_size=4, max_size=16))
def test_skipping_or_pinning_changes_no_schedule(prices):
    n = len(prices)
    problem = battery_problem(n)
    problem.consumption_price[:] = prices
    problem.production_price[:] = prices
    skipped = schedule(problem)
    # Nothing pinned, nothing skipped: the plain tie-break over the whole face.
    saved = backend._pinned_columns
    backend._pinned_columns = lambda h, lp: (np.zeros(0, dtype=np.int32), np.zeros(0))
    try:
        forced = schedule(problem)
    finally:
        backend._pinned_columns = saved
    assert skipped.status is forced.status
    assert abs(skipped.costs.total - forced.costs.total) <= 1e-6
    # The tie-breaking solve may use its face's rounding slack (a few 1e-6 kW), no more.
    for a, b in zip(skipped.schedules, forced.schedules, strict=True):
        np.testing.assert_allclose(a.power, b.power, atol=1e-4)


def test_pinned_columns_sit_at_their_bounds_with_non_zero_reduced_costs():
    problem = _lossless_flat(48)
    problem.consumption_price[24:] = 0.2
    problem.production_price[24:] = 0.2
    h, clp = _first_solve(problem)
    pinned = backend._pinned_columns(h, clp)
    assert pinned is not None
    idx, value = pinned
    sol = h.getSolution()
    x, rc = np.asarray(sol.col_value)[idx], np.asarray(sol.col_dual)[idx]
    np.testing.assert_allclose(x, value, atol=1e-9)
    assert np.all((value == clp.lb[idx]) | (value == clp.ub[idx]))
    assert np.all(np.abs(rc) > backend.DUAL_ZERO)
