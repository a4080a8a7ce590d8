"""Processes (FlexMeasures' ProcessScheduler): a fixed power for a fixed duration.

A process draws ``power`` kW for ``duration_steps`` steps and may not run in
steps its time restrictions forbid. Placement by process type:

- ``SHIFTABLE``: one contiguous run. A binary per feasible start ``j``
  (``sum_j s[j] = 1``); the process draws ``power`` in every step ``j .. j+k-1``
  of the chosen start. Ties go to the earliest start (a secondary objective,
  see ``solvers.formulation``).
- ``BREAKABLE``: any ``k`` allowed steps, not necessarily contiguous: a binary per
  allowed step, ``sum_t on[t] = k``.
- ``INFLEXIBLE``: the earliest contiguous run that respects the time
  restrictions; nothing is optimised.

With ``optimization-sense`` ``MAX`` the process is placed on its own at the
dearest consumption prices (ties to the earliest steps), before the site is
optimised; like an inflexible process it then enters the site problem as a fixed
load, so site capacities and their breaches still account for it.

When no placement exists (the duration exceeds the window, or the restrictions
leave no room), the process's placement row ``sum = 1`` (or ``= k``) has no
columns, the model is infeasible and the diagnosis names that row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.flex_problem import OptimizationSense, ProcessDevice, ProcessType
from solvers.lp import ColumnBlock, LinearProgram


def feasible_starts(dev: ProcessDevice) -> np.ndarray:
    """Starts ``j`` whose run ``j .. j+k-1`` lies in the window on allowed steps only."""
    k, n = dev.duration_steps, dev.n
    if k > n:
        return np.zeros(0, dtype=np.int64)
    if k == 0:
        return np.arange(n)
    blocked = np.concatenate([[0], np.cumsum(~dev.allowed)])
    j = np.arange(n - k + 1)
    return j[(blocked[j + k] - blocked[j]) == 0]


def fixed_profile(dev: ProcessDevice, price: np.ndarray) -> np.ndarray | None:
    """On/off per step for processes placed without optimisation (``None`` if impossible)."""
    n, k = dev.n, dev.duration_steps
    on = np.zeros(n)
    if dev.process_type is ProcessType.BREAKABLE:
        allowed = np.flatnonzero(dev.allowed)
        if len(allowed) < k:
            return None
        order = np.argsort(-price[allowed], kind="stable")
        on[allowed[order[:k]]] = 1.0
        return on
    starts = feasible_starts(dev)
    if len(starts) == 0:
        return None
    if dev.process_type is ProcessType.INFLEXIBLE:
        j = int(starts[0])
    else:
        window = np.concatenate([[0.0], np.cumsum(price)])
        value = window[starts + k] - window[starts]
        j = int(starts[np.argmax(value)])
    on[j : j + k] = 1.0
    return on


@dataclass
class ProcessVars:
    """One process: either a fixed profile or its selection binaries."""

    device: ProcessDevice
    fixed: np.ndarray | None
    select: ColumnBlock | None = None
    starts: np.ndarray | None = None

    def power(self, x: np.ndarray) -> np.ndarray:
        """Power per step (kW) from a solution vector."""
        dev = self.device
        if self.fixed is not None:
            return dev.power * self.fixed
        on = np.zeros(dev.n)
        s = np.round(self.select.values(x))
        if dev.process_type is ProcessType.BREAKABLE:
            on[self.starts] = s
        else:
            for j, v in zip(self.starts, s, strict=True):
                if v > 0.5:
                    on[j : j + dev.duration_steps] = 1.0
        return dev.power * on


def add_process(
    lp: LinearProgram, dev: ProcessDevice, price: np.ndarray, timing: np.ndarray
) -> tuple[ProcessVars, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Add a process to ``lp``.

    Returns its blocks and its contribution to the site balance: COO triplets
    (step, column, kW) for the optimised part and a constant kW profile.
    """
    n, k, name = dev.n, dev.duration_steps, dev.name
    empty = np.zeros(0, dtype=np.int64)
    restricted = not bool(dev.allowed.all())
    constraint = "time-restrictions" if restricted else "duration"
    optimised = dev.process_type is not ProcessType.INFLEXIBLE and (
        dev.sense is OptimizationSense.MIN
    )
    if not optimised:
        on = fixed_profile(dev, price)
        if on is None:
            # No placement: an empty row that cannot hold, named for the diagnosis.
            lp.add_rows(
                f"{name}.placement", empty, empty, np.zeros(0), 1.0, 1.0,
                size=1, constraint=constraint, device=name, steps=np.zeros(1, dtype=int),
            )  # fmt: skip
            return ProcessVars(dev, np.zeros(n)), empty, empty, np.zeros(0), np.zeros(n)
        return ProcessVars(dev, on), empty, empty, np.zeros(0), dev.power * on

    if dev.process_type is ProcessType.BREAKABLE:
        starts = np.flatnonzero(dev.allowed)
        select = lp.add_columns(f"{name}.on", len(starts), 0.0, 1.0, 0.0, True)
        lp.add_cost(select, timing[starts], secondary=True)
        steps, cols = starts, select.index
        need = float(k)
    else:
        starts = feasible_starts(dev)
        select = lp.add_columns(f"{name}.start", len(starts), 0.0, 1.0, 0.0, True)
        if len(starts):
            lp.add_cost(select, timing[starts], secondary=True)
        offs = np.arange(k)
        steps = (starts[:, None] + offs[None, :]).ravel()
        cols = np.repeat(select.index, k)
        need = 1.0
    lp.add_rows(
        f"{name}.placement",
        np.zeros(select.size, dtype=np.int64),
        select.index,
        np.ones(select.size),
        need,
        need,
        size=1,
        constraint=constraint,
        device=name,
        steps=np.zeros(1, dtype=int),
    )
    vals = np.full(len(cols), dev.power)
    return ProcessVars(dev, None, select, starts), steps, cols, vals, np.zeros(n)
