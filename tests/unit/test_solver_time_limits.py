"""A request whose time runs out after the first LP never comes back with an invalid schedule.

The first LP of these sites is fractional (a process's start, an operation
mode's band); out of time, the answer is ``time-limit`` (with a valid schedule
or none) or the outcome the solver still proved, never the relaxation's values
called optimal.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

import solvers.highs_backend as highs_backend
from schemas.flex_problem import ProcessDevice
from solvers import SiteProblem, Status, TimeGrid, schedule
from solvers.feature_examples import modes_on_off

LIMIT = 0.2


@pytest.fixture
def slow_first_solve(monkeypatch):
    """The first solve of each request takes longer than the request's time limit."""
    solve = highs_backend.HighsBackend.solve
    calls = []

    def slow(self, lp, **kwargs):
        raw = solve(self, lp, **kwargs)
        if not calls:
            time.sleep(LIMIT * 1.5)
        calls.append(kwargs.get("relax_integrality", False))
        return raw

    monkeypatch.setattr(highs_backend.HighsBackend, "solve", slow)
    return calls


def _process_site() -> SiteProblem:
    """A 2 kW process for two of four hours under a 3 kW connection already carrying 1.5 kW
    in hours 1 and 2: no placement fits (the LP splits the start over three hours)."""
    grid = TimeGrid(datetime(2024, 1, 1, tzinfo=UTC), timedelta(hours=1), 4)
    process = ProcessDevice("oven", 4, 2.0, 2)
    return SiteProblem(
        grid,
        [process],
        np.full(4, 0.1),
        site_power_capacity=3.0,
        inflexible_power=np.array([0.0, 1.5, 1.5, 0.0]),
    )


def test_an_impossible_process_is_never_called_optimal(slow_first_solve):
    result = schedule(_process_site(), time_limit=LIMIT)
    assert slow_first_solve[0] is True  # the first solve was the relaxation
    assert result.status in (Status.INFEASIBLE, Status.TIME_LIMIT), result.message


def test_operation_modes_out_of_time_give_a_valid_schedule_or_none(slow_first_solve):
    problem = modes_on_off()
    result = schedule(problem, time_limit=LIMIT)
    assert result.status in (Status.OPTIMAL, Status.TIME_LIMIT), result.message
    for dev, s in zip(problem.devices, result.schedules, strict=False):
        inside = [(lo - 1e-6 <= s.power) & (s.power <= hi + 1e-6) for lo, hi in dev.operation_modes]
        assert np.any(inside, axis=0).all()
