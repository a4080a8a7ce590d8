"""Priced capacity breaches, charged per step and at their peak (as FlexMeasures does).

For a flow ``f[t] >= 0`` (kW) under a capacity ``cap[t]`` with a breach price
``p[t]`` (currency per kW), the formulation adds breach columns ``b[t] >= 0`` and
one peak column ``B >= 0``::

    f[t] - b[t] <= cap[t]          (the capacity, given way by b)
    p[t] * b[t] - B <= 0           (B is the largest priced breach)
    cost: sum_t p[t] * b[t] + B

The per-step term prices the breach in every step; the peak term prices the
largest one once more. With the per-step term alone, a given total breach costs
the same however it is distributed, so the solver may put it all in one step;
the peak term makes spreading it strictly cheaper, which is what a grid operator
(and FlexMeasures' "any breach" commitment) asks for.

Where the capacity is zero (no connection that way, e.g. a heat network's
balance) the breach is the flow itself: the price goes onto the flow's column
and the flow enters the peak row, with no breach column or capacity row.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from schemas.flex_problem import TimeGrid
from solvers.lp import ColumnBlock, LinearProgram
from solvers.result import Breach


def add_priced_breach(
    lp: LinearProgram,
    name: str,
    flow: np.ndarray,
    cap: np.ndarray,
    price: np.ndarray,
    *,
    constraint: str,
    device: str | None = None,
) -> tuple[ColumnBlock, ColumnBlock] | None:
    """Add ``flow[t] - b[t] <= cap[t]`` with per-step and peak breach costs.

    ``flow`` holds the column index of the flow per step; steps with an infinite
    or ``nan`` capacity get no breach column. Returns the breach and peak blocks.
    """
    cap = np.asarray(cap, dtype=float)
    steps = np.flatnonzero(np.isfinite(cap))
    m = len(steps)
    if m == 0:
        return None
    p = np.asarray(price, dtype=float)[steps]
    zero = cap[steps] == 0.0
    # Breach columns only where the capacity is positive; elsewhere the flow is the breach.
    pos = steps[~zero]
    b = lp.add_columns(f"{name}.breach", len(pos), 0.0, np.inf, p[~zero])
    lp.add_cost_at(flow[steps[zero]], p[zero])
    breach_col = np.empty(m, dtype=np.int64)
    breach_col[zero] = flow[steps[zero]]
    breach_col[~zero] = b.start + np.arange(len(pos))
    peak = lp.add_columns(f"{name}.peak-breach", 1, 0.0, np.inf, 1.0)
    if len(pos):
        r = np.arange(len(pos))
        lp.add_rows(
            f"{name}.capacity",
            np.repeat(r, 2),
            np.stack([flow[pos], b.start + r], 1).ravel(),
            np.tile([1.0, -1.0], len(pos)),
            None,
            cap[pos],
            size=len(pos),
            constraint=constraint,
            device=device,
            steps=pos,
            unit="kW",
            elastic=False,
        )
    r = np.arange(m)
    lp.add_rows(
        f"{name}.peak",
        np.repeat(r, 2),
        np.stack([breach_col, np.full(m, peak.start)], 1).ravel(),
        np.stack([p, -np.ones(m)], 1).ravel(),
        None,
        0.0,
        size=m,
        constraint=constraint,
        device=device,
        steps=steps,
        unit="kW",
        elastic=False,
    )
    return b, peak


def capacity_breaches(
    grid: TimeGrid,
    name: str,
    device: str | None,
    flow: np.ndarray,
    cap: np.ndarray,
    price: np.ndarray,
    tol: float,
) -> Iterable[Breach]:
    """Per-step breaches of ``flow`` above ``cap`` (beyond ``tol``) and the peak charge.

    Read from a schedule, not from breach columns; ``nan`` capacities never breach.
    """
    amount = np.maximum(flow - np.where(np.isnan(cap), np.inf, cap), 0.0)
    hits = np.flatnonzero(amount > tol)
    for t in hits:
        a, p = float(amount[t]), float(price[t])
        yield Breach(name, device, grid.step_start(int(t)), a, "kW", p, a * p)
    if len(hits):
        priced = amount * price
        t = int(np.argmax(priced))
        a, p = float(amount[t]), float(price[t])
        yield Breach(f"{name} (peak)", device, grid.step_start(t), a, "kW", p, a * p)
