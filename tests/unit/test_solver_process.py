"""Process scheduling: types, time restrictions, sense, impossible requests."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from solvers import (
    OptimizationSense,
    ProcessDevice,
    ProcessType,
    SiteProblem,
    Status,
    StorageDevice,
    TimeGrid,
    schedule,
)

T0 = datetime(2024, 1, 1, tzinfo=UTC)
PRICES = np.array([0.5, 0.1, 0.4, 0.2, 0.05, 0.3, 0.6, 0.1])


def run(dev, prices=PRICES, **kw):
    return schedule(SiteProblem(TimeGrid(T0, timedelta(hours=1), len(prices)), [dev], prices, **kw))


def proc(kind, allowed=None, k=2, sense=OptimizationSense.MIN):
    return ProcessDevice(
        "p",
        len(PRICES),
        power=10.0,
        duration_steps=k,
        process_type=kind,
        allowed=allowed,
        sense=sense,
    )


def test_shiftable_picks_cheapest_contiguous_run():
    r = run(proc(ProcessType.SHIFTABLE))
    assert r.status is Status.OPTIMAL
    # Windows: 0.6 .55 .6 .25 .35 .9 .7 -> start 3.
    np.testing.assert_allclose(r.schedule_of("p").power, [0, 0, 0, 10, 10, 0, 0, 0])
    assert r.costs.total == pytest.approx(10 * 0.25)


def test_shiftable_respects_time_restrictions():
    allowed = np.ones(8, bool)
    allowed[4] = False
    r = run(proc(ProcessType.SHIFTABLE, allowed))
    # Without steps touching 4: starts 0,1,2,6 -> 0.6 .5 .6 .7 -> start 1.
    np.testing.assert_allclose(r.schedule_of("p").power, [0, 10, 10, 0, 0, 0, 0, 0])


def test_breakable_picks_cheapest_steps():
    r = run(proc(ProcessType.BREAKABLE, k=3))
    np.testing.assert_allclose(r.schedule_of("p").power, [0, 10, 0, 0, 10, 0, 0, 10])


def test_inflexible_runs_at_the_earliest_allowed_start():
    allowed = np.ones(8, bool)
    allowed[1] = False
    r = run(proc(ProcessType.INFLEXIBLE, allowed))
    np.testing.assert_allclose(r.schedule_of("p").power, [0, 0, 10, 10, 0, 0, 0, 0])


def test_max_sense_picks_dearest_run():
    r = run(proc(ProcessType.SHIFTABLE, sense=OptimizationSense.MAX))
    np.testing.assert_allclose(r.schedule_of("p").power, [0, 0, 0, 0, 0, 10, 10, 0])


@pytest.mark.parametrize("kind", list(ProcessType))
def test_impossible_request_is_infeasible_and_named(kind):
    allowed = np.array([True, False] * 4)
    r = run(proc(kind, allowed, k=5))
    assert r.status is Status.INFEASIBLE
    assert not r.schedules
    assert r.conflicts and r.conflicts[0].constraint == "time-restrictions"
    assert r.conflicts[0].device == "p"
    assert "time-restrictions" in r.message


def test_process_and_battery_share_a_site_capacity():
    n = len(PRICES)
    bat = StorageDevice(
        "bat",
        n,
        soc_at_start=0,
        soc_max=20,
        consumption_capacity=10,
        production_capacity=10,
        soc_targets=np.r_[np.full(n, np.nan), 20],
    )
    p = proc(ProcessType.SHIFTABLE)
    r = schedule(
        SiteProblem(TimeGrid(T0, timedelta(hours=1), n), [p, bat], PRICES, site_power_capacity=12.0)
    )
    assert r.status is Status.OPTIMAL
    net = r.schedule_of("p").power + r.schedule_of("bat").power
    assert np.all(np.abs(net) <= 12 + 1e-6)
    assert r.schedule_of("bat").soc[-1] == pytest.approx(20)
