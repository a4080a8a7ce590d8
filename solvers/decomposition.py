"""Proving a fleet's optimum device by device (Lagrangian decomposition).

Many storage devices behind one connection are tied together only by the
site's power balance rows (every device's net power meets the site's import
and export there). When the LP relaxation charges and discharges a device at
once (negative prices: wasting energy pays), binaries are needed at those
steps. One MILP over the whole fleet then spends most of its time proving its
bound: the relaxation is only about 1e-4 of the cost below the optimum, as much
as the MILP tolerance itself, so HiGHS runs cut rounds to close the difference
(100 V2G EVs x 192 steps: 1.2 s of MILP after a 0.4 s LP). This module proves the
same tolerance with small problems instead:

Bound. Relax the balance rows with the LP's own duals ``y``. For any ``y`` the
Lagrangian ``L(y) = y b + min (c - A_b^T y) x`` over the remaining rows (with
the binaries) is a lower bound on the MILP optimum, and that minimum falls
apart into the site's columns and one problem per device: the device alone
under the price ``-y / dt`` per kWh. The LP optimum ``x0`` solves every part of
it without binaries (LP duality), so ``L`` starts at the LP's objective. Two
steps raise it, each replacing an overlapping device's part ``c' x0`` (on its
columns) by a tighter one:

1. the overlapping devices alone under that price with their binaries
   relaxed, in one LP (``c+ <= C+ z``, ``c- <= C- (1 - z)`` already forbid
   charging and discharging at full power at once);
2. then one device at a time as its own MILP (its dual bound), in order of how
   much it overlaps in that LP, until the bound suffices: at 100 V2G EVs under
   a negative-price evening, 6 of 39 devices (each MILP 20-60 ms).

Schedule. The LP is re-solved from its basis with one direction per binary
step of each overlapping device: the other direction's upper bound set to 0,
as the relaxed per-device LP of step 1 chose (the larger flow; after all
devices' MILPs, their choices). Overlaps that appear elsewhere are closed the
same way. Its cost ``U`` is that of a schedule with one net power per device
and step.

Proof. ``U - L <= max(MIP_REL_GAP * |U|, 1e-6)``: optimal within the tolerance
HiGHS's own MILP uses (``solvers.highs_backend.MIP_REL_GAP``, and its default
absolute gap). If every
overlapping device has been solved and the bound still falls short, the
caller solves the fleet's MILP as before (``prove_by_devices`` returns None).
The bound holds to the LP's own tolerances, as a MILP solver's does.

Measured against the fleet MILP on the same problems
(``tests/benchmarks/bench_solver_fleet.py``): see ``solvers/README.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from schemas.flex_problem import SiteProblem, StorageDevice
from solvers.backend import Backend, RawSolution, Termination, resolve_with_bounds
from solvers.formulation import Formulation, build
from solvers.highs_backend import MIP_REL_GAP
from solvers.lp import CompiledLP
from solvers.storage import StorageVars, waste_candidates

#: Fewest overlapping devices for which the decomposition is tried: with one,
#: its bound is that of the device alone under the LP's prices, which a site's
#: connection limit can leave weak (then the fleet MILP runs after all).
MIN_DEVICES = 2
#: Rounds of fixing directions where the re-solved schedule overlaps anew.
PRIMAL_ROUNDS = 3
#: The absolute gap that also proves an optimum (HiGHS's ``mip_abs_gap`` default).
MIP_ABS_GAP = 1e-6


@dataclass
class DeviceProof:
    """A schedule proven optimal within the MILP tolerance (or the best when time ran out)."""

    raw: RawSolution  # the schedule: termination OPTIMAL (TIME_LIMIT: unproven), gap and bound
    lp: CompiledLP  # the LP with directions fixed that ``raw`` solves (for the tie-break)
    bound: float
    device_milps: int


def prove_by_devices(
    problem: SiteProblem,
    form: Formulation,
    clp: CompiledLP,
    raw: RawSolution,
    backend: Backend,
    binary_steps: dict[str, np.ndarray],
    remaining: Callable[[], float | None],
) -> DeviceProof | None:
    """Prove an optimum of the site's MILP from its LP ``raw`` (see the module docstring).

    ``form``/``clp`` are the model without binaries that ``raw`` solved;
    ``binary_steps`` the steps per overlapping device that get binaries. None
    where the site does not fall apart into devices (groups, couplings, other
    commodities, operation modes, integer columns), the LP has no duals, or the
    bound falls short: the caller then solves the MILP. When ``remaining()``
    runs out after a schedule was found, that schedule with termination
    TIME_LIMIT and its gap.
    """
    if not _separable(problem, clp, raw, binary_steps):
        return None
    storages = {sv.device.name: sv for sv in form.site.storages}
    a = sparse.csr_matrix((clp.a_value, clp.a_index, clp.a_start), shape=(clp.num_row, clp.num_col))
    balance = _block_rows(clp, "site.balance")
    y = raw.row_dual[balance]
    reduced = clp.c - a[balance].T @ y if len(balance) else clp.c
    if len(balance) not in (0, problem.grid.n):
        return None
    part = _device_parts(a, balance, form, binary_steps, reduced, raw.x)
    if part is None:
        return None
    # The price each device meets alone: the balance rows' duals per kWh; without site
    # columns (one price both ways, no limits) the price is already on the devices' columns.
    price = -y / problem.grid.dt_hours if len(balance) else problem.consumption_price
    # The overlapping devices alone under that price, binaries relaxed, in one LP: each
    # device's part of it raises the bound from the LP's, and its charge-or-discharge
    # choices give the first schedule.
    devices = [storages[name].device for name in binary_steps]
    alone = _alone(problem, devices, price)
    bform = build(alone, binary_steps)
    bclp = bform.lp.compile()
    braw = backend.solve(bclp, relax_integrality=True, time_limit=remaining())
    if braw.termination is not Termination.OPTIMAL or braw.x is None:
        return None
    b_a = sparse.csr_matrix(
        (bclp.a_value, bclp.a_index, bclp.a_start), shape=(bclp.num_row, bclp.num_col)
    )
    relaxed = _device_parts(b_a, np.zeros(0, dtype=np.int64), bform, binary_steps, bclp.c, braw.x)
    if relaxed is None:
        return None
    lower = float(raw.objective) + sum(relaxed[name] - part[name] for name in binary_steps)
    b_storages = {sv.device.name: sv for sv in bform.site.storages}
    first = {
        name: (steps, _charging(b_storages[name], braw.x, steps))
        for name, steps in binary_steps.items()
    }
    closed = np.zeros(clp.num_col, dtype=bool)  # columns whose upper bound is set to 0
    best = _fix_directions(problem, backend, clp, clp, raw, storages, closed, first, remaining)
    if best is None:
        return None
    lp_fixed, primal = best
    order = sorted(binary_steps, key=lambda name: -_overlap(b_storages[name], braw.x))
    chosen: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in order:
        if _proven(primal.objective, lower):
            break
        left = remaining()
        if left is not None and left <= 0:
            return _stopped(primal, lp_fixed, lower, len(chosen), left)
        steps = binary_steps[name]
        sub = _device_milp(problem, storages[name].device, price, steps, backend, left)
        if sub.termination is not Termination.OPTIMAL or sub.x is None or sub.bound is None:
            # Its own time limit (HiGHS counts only its run) ends the search as the request's.
            out = sub.termination is Termination.TIME_LIMIT
            return _stopped(primal, lp_fixed, lower, len(chosen), 0.0 if out else remaining())
        lower += sub.bound - relaxed[name]
        chosen[name] = (steps, sub.x)
    if not _proven(primal.objective, lower) and len(chosen) == len(binary_steps):
        # Every device's MILP is in the bound: the schedule follows their directions.
        best = _fix_directions(
            problem, backend, clp, lp_fixed, primal, storages, closed, chosen, remaining
        )
        if best is None:
            return _stopped(primal, lp_fixed, lower, len(chosen), remaining())
        lp_fixed, primal = best
    if not _proven(primal.objective, lower):
        return _stopped(primal, lp_fixed, lower, len(chosen), remaining())
    return DeviceProof(_with_gap(primal, lower), lp_fixed, lower, len(chosen))


def _with_gap(primal: RawSolution, lower: float) -> RawSolution:
    """``primal`` with its bound and relative gap (to ``|U|``, as HiGHS reports it)."""
    gap = max(primal.objective - lower, 0.0) / max(abs(primal.objective), 1e-9)
    return replace(primal, mip_gap=gap, bound=lower)


def _stopped(
    primal: RawSolution, lp: CompiledLP, lower: float, milps: int, left: float | None
) -> DeviceProof | None:
    """Out of time: the schedule found so far, unproven (status time-limit); else None.

    With time left, None: the caller solves the fleet's MILP.
    """
    if left is None or left > 0:
        return None
    # No handle: the solver may hold other bounds by now, and an unproven schedule
    # gets no tie-break.
    raw = replace(_with_gap(primal, lower), termination=Termination.TIME_LIMIT, handle=None)
    return DeviceProof(raw, lp, lower, milps)


def _proven(upper: float, lower: float) -> bool:
    """HiGHS's own stopping rule: a relative gap of ``MIP_REL_GAP`` or an absolute one of 1e-6."""
    return upper - lower <= max(MIP_REL_GAP * abs(upper), MIP_ABS_GAP)


def _separable(
    problem: SiteProblem, clp: CompiledLP, raw: RawSolution, binary_steps: dict[str, np.ndarray]
) -> bool:
    """Whether the site may fall apart into its devices once the balance rows are relaxed.

    ``_device_parts`` checks the rows themselves; this rules out what ties devices
    on purpose, and integer columns the bound does not cover.
    """
    if len(binary_steps) < MIN_DEVICES or raw.row_dual is None or raw.x is None:
        return False
    if raw.objective is None or clp.has_integers:
        return False  # integer columns (processes, import-or-export) are not in the bound
    if problem.groups or problem.couplings or problem.commodities:
        return False
    by_name = {d.name: d for d in problem.devices}
    for name in binary_steps:
        dev = by_name.get(name)
        if not isinstance(dev, StorageDevice) or dev.operation_modes:
            return False
        if dev.commodity != "electricity":
            return False
    return True


def _block_rows(clp: CompiledLP, name: str) -> np.ndarray:
    for block, start, stop in clp.row_block_slices:
        if block == name:
            return np.arange(start, stop)
    return np.zeros(0, dtype=np.int64)


def _device_parts(
    a: sparse.csr_matrix,
    balance: np.ndarray,
    form: Formulation,
    binary_steps: dict[str, np.ndarray],
    reduced: np.ndarray,
    x: np.ndarray,
) -> dict[str, float] | None:
    """Each overlapping device's part of the relaxed LP's objective (``c' x0`` on its columns).

    The parts come from the connected components of the model without its
    balance rows; None unless every overlapping device is a component of its
    own (no row ties it to another device or to the site's import or export,
    and through them to peaks or commitments).
    """
    keep = np.ones(a.shape[0], dtype=bool)
    keep[balance] = False
    rest = a[keep]
    n = rest.shape[1]
    graph = sparse.bmat([[None, rest.T], [rest, None]], format="csr")
    _, labels = connected_components(graph, directed=False)
    col_label = labels[:n]
    first = {sv.device.name: sv.charge.start for sv in form.site.storages}
    owners: dict[int, list[str]] = {}
    for name, col in first.items():
        owners.setdefault(int(col_label[col]), []).append(name)
    site = [b for b in (form.site.consumption, form.site.production) if b is not None]
    site_labels = {int(label) for b in site for label in col_label[b.index]}
    values = np.bincount(col_label, weights=reduced * x, minlength=int(col_label.max()) + 1)
    parts = {}
    for name in binary_steps:
        label = int(col_label[first[name]])
        if owners[label] != [name] or label in site_labels:
            return None
        parts[name] = float(values[label])
    return parts


def _overlap(sv: StorageVars, x: np.ndarray) -> float:
    """How much energy a device moves both ways at once in ``x`` (kW summed over steps)."""
    return float(np.sum(np.minimum(sv.charge.values(x), sv.discharge.values(x))))


def _device_milp(
    problem: SiteProblem,
    dev: StorageDevice,
    price: np.ndarray,
    steps: np.ndarray,
    backend: Backend,
    time_limit: float | None,
) -> RawSolution:
    """One device alone under ``price`` (per kWh), binaries at ``steps``.

    The answer's ``bound`` is the MILP's dual bound; its ``x``, when optimal,
    the device's choice at ``steps`` (True: it may charge, else discharge).
    """
    form = build(_alone(problem, [dev], price), {dev.name: steps})
    clp = form.lp.compile()
    clp.device_choices = True
    raw = backend.solve(clp, time_limit=time_limit)
    if raw.termination is not Termination.OPTIMAL or raw.x is None:
        return replace(raw, x=None)
    return replace(raw, x=_charging(form.site.storages[0], raw.x, steps))


def _alone(problem: SiteProblem, devices: list[StorageDevice], price: np.ndarray) -> SiteProblem:
    """``devices`` without a connection under one ``price`` (per kWh) both ways."""
    return SiteProblem(
        problem.grid,
        devices,
        price,
        price,
        breach_prices=problem.breach_prices,
        currency=problem.currency,
    )


def _charging(sv: StorageVars, x: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """Per step of ``steps``: whether ``x`` charges at least as much as it discharges."""
    return sv.charge.values(x)[steps] >= sv.discharge.values(x)[steps]


def _fix_directions(
    problem: SiteProblem,
    backend: Backend,
    base: CompiledLP,
    lp: CompiledLP,
    start: RawSolution,
    storages: dict[str, StorageVars],
    closed: np.ndarray,
    chosen: dict[str, tuple[np.ndarray, np.ndarray]],
    remaining: Callable[[], float | None],
) -> tuple[CompiledLP, RawSolution] | None:
    """Re-solve ``start`` (an optimum of ``lp``) with one direction closed per overlapping step.

    ``base`` is the model without closed columns, ``lp`` is ``base`` with the
    columns marked in ``closed`` closed. ``chosen`` gives devices' directions
    at steps. A device that overlaps in a solution gets one direction at its
    overlapping steps and at every open step where wasting energy can pay
    (``solvers.storage.waste_candidates``: else the overlap only moves to the
    next such step at no cost, round after round), the larger flow's (where
    both are 0, charging), for up to ``PRIMAL_ROUNDS`` more solves.
    ``closed`` (updated in place) marks the columns whose upper bound is 0, as
    they stand in ``start``'s solver. Returns the last LP and its optimum, or
    None if a solve fails or overlaps remain.
    """
    raw, before = start, closed.copy()
    for round_ in range(PRIMAL_ROUNDS + 1):
        x = raw.x
        for sv in storages.values():
            steps = sv.overlap_steps(x)
            if len(steps):
                steps = np.union1d(steps, waste_candidates(problem, sv.device))
                open_ = ~closed[sv.charge.start + steps] & ~closed[sv.discharge.start + steps]
                steps = steps[open_]
                _close(sv, steps, _charging(sv, x, steps), closed)
        if round_ == 0:
            for name, (steps, charging) in chosen.items():
                _close(storages[name], steps, charging, closed)
        changed = np.flatnonzero(closed != before)
        if not len(changed):
            return lp, raw
        if round_ == PRIMAL_ROUNDS:
            return None
        ub = np.where(closed, np.minimum(base.ub, 0.0), base.ub)
        lp = replace(base, ub=ub, staged_columns=None)
        raw = resolve_with_bounds(backend, lp, raw, changed, time_limit=remaining())
        if raw.termination is not Termination.OPTIMAL or raw.x is None:
            return None
        before = closed.copy()
    return None  # pragma: no cover - the loop returns


def _close(sv: StorageVars, steps: np.ndarray, charging: np.ndarray, closed: np.ndarray) -> None:
    """Close discharging where ``charging``, else charging, at ``steps`` of ``sv``."""
    closed[np.where(charging, sv.discharge.start + steps, sv.charge.start + steps)] = True
    closed[np.where(charging, sv.charge.start + steps, sv.discharge.start + steps)] = False
