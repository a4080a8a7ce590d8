"""Commitments: a position the site's net power should follow, deviations priced per step.

For each commitment and each committed step ``t`` (baseline not ``nan``), the
site's net power ``g+[t] - g-[t]`` is split around the baseline ``b[t]``::

    g+[t] - g-[t] - u[t] + v[t] = b[t],     u[t], v[t] >= 0
    cost  up[t] * u[t] - down[t] * v[t]

``u`` is the deviation upwards (more consumption, or less production, than
committed) and ``v`` downwards. Where ``up[t] >= down[t]`` (the usual case: a
penalty both ways, or an imbalance price that pays less for being long than it
charges for being short) the LP never raises ``u`` and ``v`` at once, so the
split is exact. Where ``down[t] > up[t]`` it would pay to, and a binary per such
step keeps them apart (``u <= M y``, ``v <= M (1 - y)``, ``M`` a bound on the
deviation). :func:`commitment_cost` prices a schedule's net power the same way,
so reported costs come from the schedule.
"""

from __future__ import annotations

import numpy as np

from schemas.flex_problem import Commitment
from solvers.lp import ColumnBlock, LinearProgram, add_either_or


def add_commitment(
    lp: LinearProgram,
    k: int,
    commitment: Commitment,
    consumption: ColumnBlock,
    production: ColumnBlock,
    bound: np.ndarray,
) -> None:
    """Add commitment number ``k``; ``bound[t]`` bounds ``|net power[t]|`` (kW)."""
    c = commitment
    steps = np.flatnonzero(np.isfinite(c.baseline))
    m = len(steps)
    if m == 0:
        return
    name = f"commitment[{k}]"
    up = lp.add_columns(f"{name}.up", m, 0.0, np.inf, c.up_price[steps])
    down = lp.add_columns(f"{name}.down", m, 0.0, np.inf, -c.down_price[steps])
    r = np.arange(m)
    lp.add_rows(
        f"{name}.position",
        np.repeat(r, 4),
        np.stack(
            [consumption.start + steps, production.start + steps, up.start + r, down.start + r], 1
        ).ravel(),
        np.tile([1.0, -1.0, -1.0, 1.0], m),
        c.baseline[steps],
        c.baseline[steps],
        size=m,
        constraint=f"commitment {c.name}",
        steps=steps,
        unit="kW",
        elastic=False,
    )
    both = np.flatnonzero(c.down_price[steps] > c.up_price[steps] + 1e-12)
    if len(both) == 0:
        return
    big = bound[steps[both]] + np.abs(c.baseline[steps[both]]) + 1.0
    # u - M y <= 0 ; v + M y <= M
    add_either_or(
        lp, f"{name}.up-or-down", up.start + both, down.start + both, big, big, steps[both],
        constraint=f"commitment {c.name}",
    )  # fmt: skip


def commitment_cost(net: np.ndarray, commitment: Commitment) -> float:
    """What deviating from ``commitment`` costs for the site's ``net`` power (kW per step)."""
    c = commitment
    on = np.isfinite(c.baseline)
    dev = net[on] - c.baseline[on]
    return float(
        np.sum(c.up_price[on] * np.maximum(dev, 0.0))
        - np.sum(c.down_price[on] * np.maximum(-dev, 0.0))
    )
