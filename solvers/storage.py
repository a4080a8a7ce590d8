"""Storage devices (battery, EV with V2G, heat buffer): variables, dynamics, limits.

Per device and step ``t`` the formulation has a charging power ``P+[t] >= 0``
(consumption), a discharging power ``P-[t] >= 0`` (production) and the state of
charge at every step boundary, ``soc[0..n]``, with ``soc[0]`` fixed at
``soc-at-start``. With step length ``dt`` hours, charging efficiency ``ec``,
discharging efficiency ``ed`` and storage efficiency ``e`` per step::

    change[t] = (P+[t] * ec - P-[t] / ed) * dt + (gain[t] - usage[t]) * dt
    soc[t+1]  = e * soc[t] + b * change[t],   b = (e - 1) / ln(e)  (b = 1 if e = 1)

``b`` integrates the exponential decay over the step, so a constant flow fills
the store as it would in continuous time. The device's net power is
``P+ - P-``; the result reports only the net power, and ``soc_trajectory``
recomputes the SOC from it, so the returned SOC always follows the returned
powers.

Charging and discharging in one step: without a binary, the LP may do both when
that pays (negative prices, a store that must shed energy, ``ec * ed > 1``).
``add_storage(..., binary_steps=steps)`` adds a binary at those steps
(``P+ <= C+ z``, ``P- <= C- (1 - z)``). The engine first solves without any and
adds them lazily, only at the steps where an optimum overlaps and
``ec * ed != 1``, then solves again, until no step overlaps. Each model on the
way is a relaxation of the full model (binaries at every step), so an optimum
without overlap is optimal for the full model too; with ``ec * ed = 1`` an
overlap changes neither the net power nor the SOC, so reporting the net power
is exact.

At the steps with a binary, two valid inequalities tighten the relaxation
(``room_cuts``): a step charges at most into the room left at its start and
discharges at most the energy held at its start::

    b dt ec P+[t] + e soc[t] <= soc_max[t+1] - b dt (gain - usage)
    b dt P-[t] / ed - e soc[t] <= b dt (gain - usage) - soc_min[t+1]

Each holds in the charging mode by the dynamics (``P- = 0``), and in the other
mode (``P+ = 0``, respectively ``P- = 0``) whenever the hard bounds let the
SOC at ``t`` drift into the bounds at ``t+1`` on its own, which is checked per
step (``e soc_max[t] + b dt (gain - usage) <= soc_max[t+1]`` and its mirror);
they are added only there. The relaxation, which may charge and discharge at
once, otherwise charges more than the room while discharging to make up for it:
exactly the waste of energy that pays under negative prices, and the gap that
makes such MILPs slow to prove.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.flex_problem import SiteProblem, StorageDevice
from solvers.breaches import add_priced_breach
from solvers.lp import ColumnBlock, LinearProgram, Soft, add_either_or

#: Weight of the timing preference in the secondary objective, per kWh (throughput: 1).
TIMING = 0.5

#: Bound used in big-M rows when a device's power capacity is unlimited (kW).
BIG_M = 1e6


def decay_factor(e: np.ndarray) -> np.ndarray:
    """Return ``b = (e - 1) / ln(e)`` per step (``1`` where ``e == 1``)."""
    e = np.asarray(e, dtype=float)
    out = np.ones_like(e)
    lossy = np.abs(e - 1.0) > 1e-15
    out[lossy] = (e[lossy] - 1.0) / np.log(e[lossy])
    return out


def soft_breach(capacity: np.ndarray, price: np.ndarray | None) -> bool:
    """Whether a device capacity is soft: priced, finite and not zero (FlexMeasures' rule)."""
    cap = np.asarray(capacity, dtype=float)
    return price is not None and bool(np.all(np.isfinite(cap))) and bool(np.any(cap > 0))


def soc_trajectory(dev: StorageDevice, net_power: np.ndarray, dt: float) -> np.ndarray:
    """SOC at every boundary (``n + 1`` values) from the device's net power (kW)."""
    p = np.asarray(net_power, dtype=float)
    change = (
        np.maximum(p, 0.0) * dev.charging_efficiency
        - np.maximum(-p, 0.0) / dev.discharging_efficiency
        + dev.soc_gain
        - dev.soc_usage
    ) * dt
    b = decay_factor(dev.storage_efficiency)
    soc = np.empty(len(p) + 1)
    soc[0] = dev.soc_at_start
    e = dev.storage_efficiency
    bc = b * change
    for t in range(len(p)):
        soc[t + 1] = e[t] * soc[t] + bc[t]
    return soc


@dataclass
class StorageVars:
    """The column blocks of one storage device."""

    device: StorageDevice
    charge: ColumnBlock
    discharge: ColumnBlock
    soc: ColumnBlock | None  # None for a converter's port without a state of charge
    charging: ColumnBlock | None = None  # binaries at the steps given to add_storage

    def net_power(self, x: np.ndarray) -> np.ndarray:
        """Net power per step (kW) from a solution vector."""
        return self.charge.values(x) - self.discharge.values(x)

    def overlap_steps(self, x: np.ndarray, tol: float = 1e-7) -> np.ndarray:
        """Steps where the solution both charges and discharges and that changes the SOC."""
        dev = self.device
        if self.soc is None:
            return np.zeros(0, dtype=np.int64)  # no state of charge for an overlap to change
        both = np.minimum(self.charge.values(x), self.discharge.values(x)) > tol
        lossless = np.abs(dev.charging_efficiency * dev.discharging_efficiency - 1.0) < 1e-12
        return np.flatnonzero(both & ~lossless)


def add_storage(
    lp: LinearProgram,
    dev: StorageDevice,
    dt: float,
    *,
    soc_minima_price: float | None,
    soc_maxima_price: float | None,
    consumption_breach_price: np.ndarray | None = None,
    production_breach_price: np.ndarray | None = None,
    timing: np.ndarray | None = None,
    binary_steps: np.ndarray | None = None,
) -> StorageVars:
    """Add one storage device's columns and rows to ``lp``; return its blocks.

    With a breach price, a non-zero consumption (production) capacity is soft up
    to the hard ``power_capacity``; a capacity of zero stays hard.
    """
    n, name = dev.n, dev.name
    soft_c = soft_breach(dev.consumption_capacity, consumption_breach_price)
    soft_p = soft_breach(dev.production_capacity, production_breach_price)
    up_c = dev.power_capacity if soft_c else dev.consumption_capacity
    up_p = dev.power_capacity if soft_p else dev.production_capacity
    charge = lp.add_columns(f"{name}.charge", n, 0.0, up_c)
    discharge = lp.add_columns(f"{name}.discharge", n, 0.0, up_p)
    for flag, block, cap, price, what in (
        (soft_c, charge, dev.consumption_capacity, consumption_breach_price, "consumption"),
        (soft_p, discharge, dev.production_capacity, production_breach_price, "production"),
    ):
        if flag:
            add_priced_breach(
                lp, f"{name}.{what}-capacity", block.index, cap, price,
                constraint=f"{what}-capacity", device=name,
            )  # fmt: skip
    if timing is not None:
        # Secondary objective: throughput, then when to charge (see solvers.formulation).
        late = timing if dev.prefer_charging_sooner else 1.0 - timing
        lp.add_cost(charge, dt * (1.0 + TIMING * late), secondary=True)
        lp.add_cost(discharge, dt * (1.0 + TIMING * (1.0 - late)), secondary=True)
    if not dev.has_soc:
        # A converter's port: a flow only, with no state of charge to follow.
        return StorageVars(dev, charge, discharge, None)
    soc_lb = np.full(n + 1, -np.inf)
    soc_ub = np.full(n + 1, np.inf)
    soc_lb[0] = soc_ub[0] = dev.soc_at_start
    soc = lp.add_columns(f"{name}.soc", n + 1, soc_lb, soc_ub)

    # Dynamics: soc[t+1] - e soc[t] - b dt ec P+[t] + b dt / ed P-[t] = b dt (gain - usage).
    t = np.arange(n)
    e = dev.storage_efficiency
    b = decay_factor(e)
    rows = np.repeat(t, 4)
    cols = np.stack([soc.start + t + 1, soc.start + t, charge.start + t, discharge.start + t], 1)
    vals = np.stack(
        [
            np.ones(n),
            -e,
            -b * dt * dev.charging_efficiency,
            b * dt / dev.discharging_efficiency,
        ],
        1,
    )
    rhs = b * dt * (dev.soc_gain - dev.soc_usage)
    lp.add_rows(
        f"{name}.dynamics",
        rows,
        cols.ravel(),
        vals.ravel(),
        rhs,
        rhs,
        size=n,
        constraint="state-of-charge dynamics",
        device=name,
        unit="kWh",
        elastic=False,
    )

    # Hard device limits at boundaries 1..n (boundary 0 is soc-at-start).
    k = np.arange(1, n + 1)
    common = {"device": name, "steps": k, "unit": "kWh", "elastic_weight": 10.0}
    lp.add_bounds(
        f"{name}.soc-min", soc.start + k, dev.soc_min[1:], None, constraint="soc-min", **common
    )
    lp.add_bounds(
        f"{name}.soc-max", soc.start + k, None, dev.soc_max[1:], constraint="soc-max", **common
    )

    # Requested minima, maxima and targets at boundaries 0..n; soft where priced.
    kb = np.arange(n + 1)
    req = {"device": name, "steps": kb, "unit": "kWh"}
    lo_soft = Soft(soc_minima_price, None) if soc_minima_price is not None else None
    up_soft = Soft(None, soc_maxima_price) if soc_maxima_price is not None else None
    lp.add_bounds(
        f"{name}.soc-minima", soc.index, dev.soc_minima, None,
        constraint="soc-minima", soft=lo_soft, **req,
    )  # fmt: skip
    lp.add_bounds(
        f"{name}.soc-maxima", soc.index, None, dev.soc_maxima,
        constraint="soc-maxima", soft=up_soft, **req,
    )  # fmt: skip
    # Targets are two-sided: soft only when both sides are priced (as in FlexMeasures).
    target_soft = None
    if soc_minima_price is not None and soc_maxima_price is not None:
        target_soft = Soft(soc_minima_price, soc_maxima_price)
    lp.add_bounds(
        f"{name}.soc-targets", soc.index, dev.soc_targets, dev.soc_targets,
        constraint="soc-targets", soft=target_soft, **req,
    )  # fmt: skip

    charging = None
    if binary_steps is not None and len(binary_steps):
        t = np.asarray(binary_steps, dtype=np.int64)
        cap_c = np.minimum(np.asarray(up_c, dtype=float)[t], BIG_M)
        cap_p = np.minimum(np.asarray(up_p, dtype=float)[t], BIG_M)
        # P+ - C+ z <= 0 and P- + C- z <= C-.
        charging = add_either_or(
            lp, f"{name}.charge-or-discharge", charge.start + t, discharge.start + t,
            cap_c, cap_p, t, constraint="charge or discharge", device=name,
        )  # fmt: skip
        room_cuts(lp, dev, dt, charge, discharge, soc, t)
    return StorageVars(dev, charge, discharge, soc, charging)


def room_cuts(
    lp: LinearProgram,
    dev: StorageDevice,
    dt: float,
    charge: ColumnBlock,
    discharge: ColumnBlock,
    soc: ColumnBlock,
    steps: np.ndarray,
) -> None:
    """Add the room and energy cuts of the module docstring at ``steps`` where they are valid."""
    e = dev.storage_efficiency[steps]
    b = decay_factor(e)
    drift = b * dt * (dev.soc_gain - dev.soc_usage)[steps]
    smax = np.asarray(dev.soc_max, dtype=float)
    smin = np.asarray(dev.soc_min, dtype=float)
    # The hard bounds at each step's start (boundary 0 is soc-at-start).
    smax_now = np.where(steps == 0, dev.soc_at_start, smax[steps])
    smin_now = np.where(steps == 0, dev.soc_at_start, smin[steps])
    smax_next, smin_next = smax[steps + 1], smin[steps + 1]
    cons_cap = np.asarray(dev.consumption_capacity, dtype=float) * np.ones(dev.n)
    prod_cap = np.asarray(dev.production_capacity, dtype=float) * np.ones(dev.n)
    with np.errstate(invalid="ignore"):
        up_ok = np.isfinite(smax_next) & (e * smax_now + drift <= smax_next + 1e-9)
        lo_ok = np.isfinite(smin_next) & (e * smin_now + drift >= smin_next - 1e-9)
    up_ok &= cons_cap[steps] > 0
    lo_ok &= prod_cap[steps] > 0
    for kind, ok, flow, coef, sign, bound in (
        ("room", up_ok, charge, b * dt * dev.charging_efficiency[steps], 1.0, smax_next - drift),
        ("energy", lo_ok, discharge, b * dt / dev.discharging_efficiency[steps], -1.0,
         drift - smin_next),
    ):  # fmt: skip
        idx = np.flatnonzero(ok)
        if not len(idx):
            continue
        t = steps[idx]
        m = len(t)
        lp.add_rows(
            f"{dev.name}.{kind}-cut",
            np.repeat(np.arange(m), 2),
            np.stack([flow.start + t, soc.start + t], 1).ravel(),
            np.stack([coef[idx], sign * e[idx]], 1).ravel(),
            None,
            bound[idx],
            size=m,
            constraint="state-of-charge dynamics",
            device=dev.name,
            steps=t,
            unit="kWh",
            elastic=False,
            cut=True,
        )


def waste_candidates(problem: SiteProblem, dev: StorageDevice) -> np.ndarray:
    """Steps where charging and discharging at once may pay for ``dev``: binary candidates.

    Wasting energy in a step lowers the cost only where the step's energy is
    worth nothing or less (an optimum of the relaxation overlaps only where the
    SOC's marginal value is at most 0, so the site price it meets must be at
    most 0 too: consumption or production price, whichever the site's margin
    is at). The engine gives these steps binaries together with the
    overlapping ones, so one MILP usually settles a negative-price evening
    instead of one round per step the overlap moves to; overlaps elsewhere
    (e.g. a store shedding energy to meet a maximum) are caught by the next
    round. ``solvers.decomposition`` fixes one direction at all of them at once
    for the same reason.
    """
    prices = (problem.consumption_price, problem.production_price)
    for cg in problem.commodities:
        if cg.commodity == dev.commodity:  # the prices the device's own commodity meets
            prices = (cg.consumption_price, cg.production_price)
    cheap = np.minimum(*prices) <= 0.0
    both = (np.asarray(dev.consumption_capacity) > 0) & (np.asarray(dev.production_capacity) > 0)
    lossless = np.abs(dev.charging_efficiency * dev.discharging_efficiency - 1.0) < 1e-12
    return np.flatnonzero(cheap & both & ~lossless)
