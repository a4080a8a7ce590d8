"""A site that is only a price (no connection limit, one price both ways) has no site columns."""

from datetime import timedelta

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solvers import (
    ProcessDevice,
    ProcessType,
    SiteProblem,
    Status,
    StorageDevice,
    TimeGrid,
    schedule,
)
from solvers.examples import START, battery_problem
from solvers.formulation import build


def _site(n: int, prices: np.ndarray, inflexible: np.ndarray, cap: float) -> SiteProblem:
    bat = StorageDevice(
        "bat",
        n,
        soc_at_start=5.0,
        soc_min=1.0,
        soc_max=20.0,
        consumption_capacity=4.0,
        production_capacity=4.0,
        charging_efficiency=0.9,
        discharging_efficiency=0.9,
    )
    proc = ProcessDevice("p", n, power=3.0, duration_steps=2, process_type=ProcessType.SHIFTABLE)
    return SiteProblem(
        TimeGrid(START, timedelta(hours=1), n),
        [bat, proc],
        prices,
        site_power_capacity=cap,
        inflexible_power=inflexible,
    )


def test_price_only_site_has_no_site_columns_or_balance():
    form = build(battery_problem(96))
    clp = form.lp.compile()
    assert form.site.consumption is None and form.site.production is None
    assert "site.balance" not in [name for name, _, _ in clp.row_block_slices]
    assert clp.num_row == 96  # the battery's dynamics only
    limited = battery_problem(96)
    limited.site_power_capacity = np.full(96, 50.0)
    assert build(limited).site.consumption is not None


@settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    prices=st.lists(st.floats(-0.2, 0.5), min_size=6, max_size=12),
    inflexible=st.floats(-5.0, 5.0),
)
def test_price_only_site_costs_what_the_full_site_costs(prices, inflexible):
    n = len(prices)
    p = np.round(np.asarray(prices), 4)
    load = np.full(n, inflexible)
    direct = schedule(_site(n, p, load, np.nan))
    # A connection limit far above any flow keeps the site's columns and balance rows.
    full = schedule(_site(n, p, load, 1e5))
    assert direct.status in (Status.OPTIMAL, Status.RELAXED)
    assert direct.status is full.status
    assert abs(direct.costs.total - full.costs.total) <= 1e-6 * max(1.0, abs(full.costs.total))
