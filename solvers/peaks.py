"""Peak pricing: a new peak of the site's consumption (or production) costs its price per kW.

As FlexMeasures' ``site-peak-consumption`` / ``site-peak-production`` fields
mean it: the peak already reached this period is the baseline, and what the
schedule adds on top of it is charged once per kW at the peak price. A peak
price or baseline that changes over the window splits it into periods (runs of
steps with the same baseline and price), each with a peak of its own::

    for each period k:   d[k] >= flow[t] - baseline[t]   (t in k),   d[k] >= 0
    cost                 sum_k price[k] * d[k]

``flow`` is the site's consumption ``g+`` (or production ``g-``). Steps
without a price (``nan``) or baseline (``nan``: no peak there) are left out.
:func:`peak_charges` reads the same charges back from a schedule, so the
reported costs come from the schedule, not from the solver's columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvers.lp import LinearProgram


@dataclass(frozen=True)
class PeakCharge:
    """The charge of one period: its first step, the new peak above the baseline, the cost."""

    first_step: int
    peak_step: int
    amount: float
    price: float

    @property
    def cost(self) -> float:
        """Price times the new peak (currency)."""
        return self.amount * self.price


def periods(baseline: np.ndarray, price: np.ndarray) -> list[np.ndarray]:
    """Steps grouped into periods of one baseline and price (priced steps only, in order)."""
    ok = np.isfinite(baseline) & np.isfinite(price)
    steps = np.flatnonzero(ok)
    if len(steps) == 0:
        return []
    new = np.ones(len(steps), dtype=bool)
    new[1:] = (
        (np.diff(steps) != 1)
        | (baseline[steps][1:] != baseline[steps][:-1])
        | (price[steps][1:] != price[steps][:-1])
    )
    return np.split(steps, np.flatnonzero(new)[1:])


def add_peak(
    lp: LinearProgram,
    name: str,
    flow: np.ndarray,
    baseline: np.ndarray,
    price: np.ndarray,
    *,
    constraint: str,
) -> int:
    """Add the peak columns and rows for ``flow`` (column indices per step); how many periods."""
    groups = [g for g in periods(baseline, price) if price[g[0]] > 0]
    if not groups:
        return 0
    costs = np.array([price[g[0]] for g in groups], dtype=float)
    d = lp.add_columns(f"{name}.new-peak", len(groups), 0.0, np.inf, costs)
    steps = np.concatenate(groups)
    owner = np.concatenate([np.full(len(g), k) for k, g in enumerate(groups)])
    m = len(steps)
    r = np.arange(m)
    lp.add_rows(
        f"{name}.peak",
        np.repeat(r, 2),
        np.stack([flow[steps], d.start + owner], 1).ravel(),
        np.tile([1.0, -1.0], m),
        None,
        baseline[steps],
        size=m,
        constraint=constraint,
        steps=steps,
        unit="kW",
        elastic=False,
    )
    return len(groups)


def peak_charges(flow: np.ndarray, baseline: np.ndarray, price: np.ndarray) -> list[PeakCharge]:
    """The charges a schedule's ``flow`` (kW per step) incurs, one per period with a new peak."""
    out = []
    for g in periods(baseline, price):
        excess = flow[g] - baseline[g]
        k = int(np.argmax(excess))
        if excess[k] > 1e-9 and price[g[0]] > 0:
            out.append(PeakCharge(int(g[0]), int(g[k]), float(excess[k]), float(price[g[0]])))
    return out
