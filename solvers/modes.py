"""Operation modes (S2 power bands): a device runs only at allowed power levels.

A storage device with operation modes has signed bands ``(lo_b, hi_b)`` (kW,
consumption positive); its net power ``p[t] = P+[t] - P-[t]`` must lie in one of
them at every step, as FlexMeasures' S2 operation modes mean it. Binaries only
where the bands need them. Per step ``t``:

1. Bands the device cannot reach at ``t`` (entirely above its largest possible
   consumption or below its largest possible production) are dropped; if none
   is reachable all are kept, so the conflict is named.
2. The remaining bands are merged into disjoint intervals ``[L_i, U_i]`` (bands
   that overlap or touch form one interval).
3. One interval: ``L <= p[t] <= U``, a plain row (none at all where it does not
   bind). A band containing 0 contiguous with the others thus needs no binary.
4. Several intervals: a binary ``y[t, i]`` per interval with
   ``sum_i y[t, i] = 1`` and ``sum_i L_i y[t, i] <= p[t] <= sum_i U_i y[t, i]``.
   No big-M: the bands are finite.

An off/on heater (``{0}`` or ``[2, 3]`` kW) gets one pair of binaries per step;
``[0, 1]`` and ``[1, 3]`` kW merge into ``[0, 3]`` and need none. The band rows
are named ``operation-modes`` (device: the device), so an infeasible request
whose power levels cannot be met says so in its conflicts.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from schemas.flex_problem import StorageDevice, TimeGrid
from solvers.lp import LinearProgram
from solvers.result import Breach
from solvers.storage import StorageVars

#: Bands closer than this (kW) count as touching.
TOUCH = 1e-9


def intervals(
    bands: Iterable[tuple[float, float]], reach_c: float, reach_p: float
) -> list[tuple[float, float]]:
    """The disjoint intervals of the bands reachable within ``[-reach_p, reach_c]`` (kW)."""
    bands = sorted(bands)
    usable = [(lo, hi) for lo, hi in bands if lo <= reach_c + TOUCH and hi >= -reach_p - TOUCH]
    merged: list[list[float]] = []
    for lo, hi in usable or bands:
        if merged and lo <= merged[-1][1] + TOUCH:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


def add_modes(
    lp: LinearProgram,
    dev: StorageDevice,
    sv: StorageVars,
    reach_c: np.ndarray,
    reach_p: np.ndarray,
) -> None:
    """Confine ``dev``'s net power to its operation modes (see the module docstring).

    ``reach_c`` and ``reach_p`` bound the consumption and production the device
    can reach per step (kW, possibly ``inf``).
    """
    name = dev.name
    plain: list[tuple[int, float, float]] = []
    banded: list[tuple[int, list[tuple[float, float]]]] = []
    for t in range(dev.n):
        ivs = intervals(dev.operation_modes, reach_c[t], reach_p[t])
        if len(ivs) > 1:
            banded.append((t, ivs))
        elif ivs[0][0] > -reach_p[t] or ivs[0][1] < reach_c[t]:
            plain.append((t, *ivs[0]))
    common = {"constraint": "operation-modes", "device": name, "unit": "kW"}
    if plain:
        steps = np.array([p[0] for p in plain])
        m = len(steps)
        lp.add_rows(
            f"{name}.operation-modes",
            np.repeat(np.arange(m), 2),
            np.stack([sv.charge.start + steps, sv.discharge.start + steps], 1).ravel(),
            np.tile([1.0, -1.0], m),
            np.array([p[1] for p in plain]),
            np.array([p[2] for p in plain]),
            size=m,
            steps=steps,
            **common,
        )
    if banded:
        _add_banded(lp, name, sv, banded, common)


def _add_banded(
    lp: LinearProgram,
    name: str,
    sv: StorageVars,
    banded: list[tuple[int, list[tuple[float, float]]]],
    common: dict[str, str],
) -> None:
    """Binaries choosing one interval per step, and the power rows they switch."""
    steps = np.array([t for t, _ in banded])
    counts = np.array([len(ivs) for _, ivs in banded])
    lo = np.concatenate([[iv[0] for iv in ivs] for _, ivs in banded])
    hi = np.concatenate([[iv[1] for iv in ivs] for _, ivs in banded])
    m, k = len(steps), int(counts.sum())
    y = lp.add_columns(f"{name}.operation-mode", k, 0.0, 1.0, integer=True)
    owner = np.repeat(np.arange(m), counts)  # the row (step) of each binary
    lp.add_rows(
        f"{name}.operation-mode.choice", owner, y.index, np.ones(k), 1.0, 1.0,
        size=m, steps=steps, elastic=False, **common,
    )  # fmt: skip
    r = np.arange(m)
    power_rows = np.concatenate([r, r])
    power_cols = np.concatenate([sv.charge.start + steps, sv.discharge.start + steps])
    power_vals = np.concatenate([np.ones(m), -np.ones(m)])
    for side, coef, lower, upper in (
        ("lower", -lo, 0.0, None),  # p - sum L y >= 0
        ("upper", -hi, None, 0.0),  # p - sum U y <= 0
    ):
        lp.add_rows(
            f"{name}.operation-modes.{side}",
            np.concatenate([power_rows, owner]),
            np.concatenate([power_cols, y.index]),
            np.concatenate([power_vals, coef]),
            lower,
            upper,
            size=m,
            steps=steps,
            **common,
        )


def mode_violations(
    grid: TimeGrid, dev: StorageDevice, power: np.ndarray, tol: float
) -> Iterable[Breach]:
    """Steps where ``power`` lies outside every band by more than ``tol`` (kW)."""
    if not dev.operation_modes:
        return
    lo = np.array([b[0] for b in dev.operation_modes])[:, None]
    hi = np.array([b[1] for b in dev.operation_modes])[:, None]
    gap = np.maximum(np.maximum(lo - power[None, :], power[None, :] - hi), 0.0).min(axis=0)
    for t in np.flatnonzero(gap > tol):
        yield Breach("operation-modes", dev.name, grid.step_start(int(t)), float(gap[t]), "kW")
