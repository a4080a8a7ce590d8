"""The scheduling agent's answer path in this process: belief state, clock and store injected.

:func:`streams.scheduling.agent.answer_request` runs as in the worker, on a
real :class:`~streams.beliefs.state.BeliefState` (its pages in a dict), with a
fixed clock, the solver on a thread and no store: no broker, no worker process.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
from test_scheduling_prepare import SENSORS, T0, assets

from connectors.settings import Settings
from schemas.beliefs import BeliefColumns
from schemas.schedule import Status
from schemas.times import to_us
from streams.beliefs.state import BeliefState
from streams.context import WorkerContext
from streams.scheduling import agent

NOW = datetime(2026, 6, 10, 0, 5, tzinfo=UTC)
ASSETS = assets()


def beliefs(sensor: str, start: datetime, values: list[float], res_s: int) -> BeliefColumns:
    n = len(values)
    starts = to_us(start) + res_s * 1_000_000 * np.arange(n, dtype=np.int64)
    return BeliefColumns(
        [sensor],
        [starts],
        [np.full(n, res_s, dtype=np.uint32)],
        [np.full(n, to_us(NOW), dtype=np.int64)],
        ["test"],
        [np.full(n, 0.5)],
        [np.asarray(values, dtype=np.float64)],
        [n],
    )


def context(state: BeliefState) -> WorkerContext:
    ctx = WorkerContext(
        app=None,
        settings=Settings(),
        bootstrap="",
        registry=SimpleNamespace(assets=ASSETS, forecasters={}),
        sensors=SENSORS,
        clock=lambda: NOW,
        db_executor=None,
        dead_letters=None,
    )
    ctx.belief_state = state
    return ctx


def request(hours: int = 4) -> dict:
    return {
        "request_id": "r1",
        "asset": "home",
        "start": T0,
        "duration_ms": hours * 3_600_000,
        "resolution_ms": 900_000,
    }


def answer(state: BeliefState, req: dict) -> list:
    async def run() -> list:
        with ThreadPoolExecutor(max_workers=1) as pool:
            return await agent.answer_request(context(state), req, pool, 10.0)

    return asyncio.run(run())


def state() -> BeliefState:
    return BeliefState({}, lambda: NOW, past=timedelta(days=2), future=timedelta(days=2))


def test_a_request_is_solved_from_the_belief_state_at_the_injected_clock():
    st = state()
    st.update(beliefs("price", T0, [0.0, 100.0, 0.0, 100.0], 3600))
    st.update(beliefs("bat-soc", T0 - timedelta(minutes=30), [3.0], 0))
    (a,) = answer(st, request())
    assert (a.sensor, a.status, a.asset) == ("bat", Status.OPTIMAL, "home"), a.message
    assert a.belief_time == NOW and a.start == T0 and len(a.values) == 16
    # Cheap hours charge, dear hours discharge; the battery starts at 3 kWh.
    assert max(a.values[:4]) > 0 and min(a.values[4:8]) < 0


def test_a_missing_input_is_answered_with_an_error_naming_the_sensor():
    st = state()
    st.update(beliefs("bat-soc", T0 - timedelta(minutes=30), [3.0], 0))
    (a,) = answer(st, request())
    assert a.status is Status.ERROR and "price" in a.message


def test_a_failure_past_the_checks_is_answered_not_raised(monkeypatch):
    st = state()
    st.update(beliefs("price", T0, [0.0, 100.0, 0.0, 100.0], 3600))
    st.update(beliefs("bat-soc", T0 - timedelta(minutes=30), [3.0], 0))

    def broken(*args):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(agent.scheduling, "solve", broken)
    (a,) = answer(st, request())
    assert a.status is Status.ERROR and "solver exploded" in a.message and a.sensor == "bat"
