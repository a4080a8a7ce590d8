"""Tie-breaks that hold by construction, no pointless cycling, FlexMeasures' process cases.

Ties are settled by a second solve over the optimal face (``solvers.engine``),
so the properties below hold for any prices, including flat and piecewise-flat
ones where every tiny-cost tie-break used to sink below the solver's tolerances.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
TOL = 1e-6
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

# --- FlexMeasures' own process cases (test_process.py), as exact schedules ---------

FM_START = "2015-01-02T00:00+01:00"
FM_PRICES = {
    "consumption-price": [
        {"start": "2015-01-02T00:00+01:00", "duration": "PT8H", "value": "100 EUR/MWh"},
        {"start": "2015-01-02T08:00+01:00", "duration": "PT8H", "value": "90 EUR/MWh"},
        {"start": "2015-01-02T16:00+01:00", "duration": "PT8H", "value": "100 EUR/MWh"},
    ]
}


def fm_process(**fields):
    fm = {"sensor": "Process", "duration": "PT4H", "power": 4, **fields}
    return schedule(parse_site_problem(fm, FM_PRICES, FM_START, "P1D", "PT1H"))


def on(first, count, n=24):
    out = np.zeros(n)
    out[first : first + count] = 4
    return out


@pytest.mark.parametrize(
    ("process_type", "expected"),
    [("INFLEXIBLE", on(0, 4)), ("SHIFTABLE", on(8, 4))],
)
def test_process_scheduler(process_type, expected):
    r = fm_process(**{"process-type": process_type})
    assert r.status is Status.OPTIMAL
    np.testing.assert_array_equal(r.schedules[0].power, expected)


@pytest.mark.parametrize("process_type", ["INFLEXIBLE", "SHIFTABLE"])
def test_duration_exceeds_planning_window(process_type):
    r = fm_process(duration="PT48H", **{"process-type": process_type})
    np.testing.assert_array_equal(r.schedules[0].power, np.full(24, 4.0))


def test_process_scheduler_time_restrictions():
    r = fm_process(
        **{
            "process-type": "SHIFTABLE",
            "time-restrictions": [{"start": "2015-01-02T08:00:00+01:00", "duration": "PT2H"}],
        }
    )
    np.testing.assert_array_equal(r.schedules[0].power, on(10, 4))


def test_breakable_scheduler_time_restrictions():
    restrictions = [
        {"start": f"2015-01-02T{h:02d}:00:00+01:00", "duration": "PT1H"} for h in (9, 11, 13, 15)
    ]
    r = fm_process(**{"process-type": "BREAKABLE", "time-restrictions": restrictions})
    np.testing.assert_array_equal(r.schedules[0].power, [0] * 8 + [4, 0] * 4 + [0] * 8)


@pytest.mark.parametrize(
    ("process_type", "restrictions"),
    [
        ("BREAKABLE", [{"start": "2015-01-02T00:00:00+01:00", "duration": "PT24H"}]),
        ("INFLEXIBLE", [{"start": "2015-01-02T03:00:00+01:00", "duration": "PT21H"}]),
        ("SHIFTABLE", [{"start": "2015-01-02T03:00:00+01:00", "duration": "PT21H"}]),
    ],
)
def test_impossible_schedules(process_type, restrictions):
    r = fm_process(**{"process-type": process_type, "time-restrictions": restrictions})
    assert r.status is Status.INFEASIBLE
    assert r.schedules == []


# --- the scenarios -------------------------------------------------------------


def flat_target(prefer_sooner: bool, soc_max: str | None = None):
    fm = {
        "sensor": "bat",
        "soc-at-start": "0 kWh",
        "power-capacity": "10 kW",
        "prefer-charging-sooner": prefer_sooner,
        "soc-targets": [{"datetime": "2015-01-03T00:00+01:00", "value": "20 kWh"}],
    }
    if soc_max:
        fm["soc-max"] = soc_max
    ctx = {"consumption-price": "100 EUR/MWh"}
    return schedule(parse_site_problem(fm, ctx, FM_START, "P1D", "PT1H")).schedules[0].power


@pytest.mark.parametrize("soc_max", [None, "40 kWh"])
def test_flat_price_target_needs_no_cycling_and_prefer_charging_sooner_decides_when(soc_max):
    sooner = flat_target(True, soc_max)
    later = flat_target(False, soc_max)
    assert np.abs(sooner).sum() == pytest.approx(20.0)
    assert np.abs(later).sum() == pytest.approx(20.0)
    np.testing.assert_allclose(sooner, [10, 10] + [0] * 22, atol=1e-9)
    np.testing.assert_allclose(later, [0] * 22 + [10, 10], atol=1e-9)


def test_capacity_breach_is_spread_not_peaked():
    # 19 kWh in 3 h under a 5 kW contract: 4 kWh of breach, spread over the three steps.
    bat = StorageDevice(
        "bat", 3, soc_at_start=0, consumption_capacity=10, production_capacity=0,
        soc_targets=[np.nan, np.nan, np.nan, 19.0],
    )  # fmt: skip
    prob = SiteProblem(
        TimeGrid(T0, HOUR, 3),
        [bat],
        np.full(3, 0.1),
        site_power_capacity=20.0,
        site_consumption_capacity=5.0,
        breach_prices=BreachPrices(site_consumption=np.full(3, 10.0)),
    )
    r = schedule(prob)
    assert r.status is Status.RELAXED
    np.testing.assert_allclose(r.schedules[0].power, [19 / 3] * 3, atol=1e-6)


# --- properties over random prices -------------------------------------------------


@st.composite
def piecewise_prices(draw, n):
    """Flat, piecewise-flat or arbitrary prices (currency per kWh), possibly negative."""
    kind = draw(st.sampled_from(["flat", "blocks", "blocks", "free"]))
    level = st.integers(-2, 30).map(lambda v: v / 100)
    if kind == "flat":
        return np.full(n, draw(level))
    if kind == "free":
        return np.array(draw(st.lists(level, min_size=n, max_size=n)))
    cuts = sorted(draw(st.sets(st.integers(1, n - 1), max_size=4)))
    bounds = [0, *cuts, n]
    out = np.empty(n)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        out[a:b] = draw(level)
    return out


def runs(prices):
    """Maximal runs of equal prices, as (start, end) index pairs."""
    edges = [0, *(np.flatnonzero(np.diff(prices) != 0) + 1), len(prices)]
    return list(zip(edges[:-1], edges[1:], strict=True))


@SETTINGS
@given(data=st.data(), n=st.integers(4, 24), sooner=st.booleans())
def test_charging_is_as_early_or_late_as_cost_allows(data, n, sooner):
    prices = data.draw(piecewise_prices(n))
    cap = float(data.draw(st.integers(1, 10)))
    need = float(data.draw(st.integers(0, int(cap * n))))
    targets = np.full(n + 1, np.nan)
    targets[n] = need
    bat = StorageDevice(
        "bat", n, soc_at_start=0, consumption_capacity=cap, production_capacity=0,
        soc_targets=targets, prefer_charging_sooner=sooner,
    )  # fmt: skip
    r = schedule(SiteProblem(TimeGrid(T0, HOUR, n), [bat], prices))
    assert r.status is Status.OPTIMAL
    p = r.schedules[0].power
    if np.all(prices >= 0):
        assert p.sum() == pytest.approx(need, abs=1e-6)
    # Within a run of equal prices, energy sits at the run's start (sooner) or end (later).
    for a, b in runs(prices):
        seg = p[a:b] if sooner else p[a:b][::-1]
        for i in range(len(seg)):
            for j in range(i + 1, len(seg)):
                assert not (seg[i] < cap - TOL and seg[j] > TOL), (prices, p)


@SETTINGS
@given(
    data=st.data(),
    n=st.integers(3, 24),
    start=st.integers(0, 30),
    target=st.integers(0, 30),
    soc_max=st.sampled_from([np.inf, 30.0, 60.0]),
    rt=st.sampled_from([1.0, 0.81]),
)
def test_flat_prices_never_cycle(data, n, start, target, soc_max, rt):
    price = data.draw(st.integers(-5, 30)) / 100
    cap = 10.0
    if abs(target - start) > cap * n * np.sqrt(rt) * 0.5:
        target = start
    targets = np.full(n + 1, np.nan)
    targets[n] = target
    bat = StorageDevice(
        "bat", n, soc_at_start=start, soc_max=soc_max, consumption_capacity=cap,
        production_capacity=cap, soc_targets=targets,
        charging_efficiency=np.sqrt(rt), discharging_efficiency=np.sqrt(rt),
    )  # fmt: skip
    prob = SiteProblem(TimeGrid(T0, HOUR, n), [bat], np.full(n, price))
    r = schedule(prob)
    assert r.status is Status.OPTIMAL
    p = r.schedules[0].power
    charged, discharged = np.maximum(p, 0).sum(), np.maximum(-p, 0).sum()
    if price > 0 or rt == 1.0:
        # Only what the target needs: a gain by charging, a loss by discharging.
        assert charged == pytest.approx(max(target - start, 0) / np.sqrt(rt), abs=1e-6)
        assert discharged == pytest.approx(max(start - target, 0) * np.sqrt(rt), abs=1e-6)
    if price >= 0:
        assert min(charged, discharged) <= 1e-6


@SETTINGS
@given(data=st.data(), n=st.integers(4, 24), k=st.integers(1, 4))
def test_shiftable_process_starts_at_the_earliest_cheapest_window(data, n, k):
    prices = data.draw(piecewise_prices(n))
    dev = ProcessDevice("p", n, power=4.0, duration_steps=k, process_type=ProcessType.SHIFTABLE)
    r = schedule(SiteProblem(TimeGrid(T0, HOUR, n), [dev], prices))
    assert r.status is Status.OPTIMAL
    costs = np.array([prices[j : j + k].sum() for j in range(n - k + 1)])
    best = int(np.flatnonzero(costs <= costs.min() + 1e-12)[0])
    np.testing.assert_array_equal(np.flatnonzero(r.schedules[0].power), np.arange(best, best + k))


@SETTINGS
@given(data=st.data(), n=st.integers(4, 24), k=st.integers(1, 6))
def test_breakable_process_takes_the_earliest_of_equal_steps(data, n, k):
    prices = data.draw(piecewise_prices(n))
    k = min(k, n)
    dev = ProcessDevice("p", n, power=4.0, duration_steps=k, process_type=ProcessType.BREAKABLE)
    r = schedule(SiteProblem(TimeGrid(T0, HOUR, n), [dev], prices))
    chosen = np.flatnonzero(r.schedules[0].power)
    expected = np.sort(np.argsort(prices, kind="stable")[:k])
    np.testing.assert_array_equal(chosen, expected)
