"""``schedule``: build once, solve, interpret the outcome in one place.

Steps:

1. Build the site formulation without charge/discharge binaries and solve it
   with integrality relaxed (an LP).
2. If that LP optimum is integral (process binaries) and no storage device both
   charges and discharges in a step where that changes its SOC, it is optimal
   for the full problem too: done, with no MILP.
3. Otherwise add charge/discharge binaries at the steps that overlapped (in a
   second round: at every step of an overlapping device), restore integrality
   and solve the MILP; repeat while overlaps remain. Every model on the way
   relaxes the full one, so an optimum without overlaps is optimal for it.
   Before the first MILP, a site whose overlapping devices are tied together
   only by its power balance (a fleet behind one connection) is first proven
   device by device (``solvers.decomposition``: a Lagrangian bound from small
   per-device MILPs at the LP's prices, and the LP re-solved with one direction
   per overlapping step); only where that bound falls short is the fleet's
   MILP solved.
4. Read the termination status before any value. On infeasibility, solve the
   elastic model (``LinearProgram.compile(elastic=True)``) and name the blocks
   and steps that needed slack.
5. Break ties lexicographically: solve once more over the optimal face
   (``CompiledLP.on_optimal_face``: the primary cost held at its optimum, within
   solver precision) minimising the secondary objective of
   ``solvers.formulation`` (throughput, then charging sooner or later, then the
   earliest process start). Ties are thereby settled by construction, not by
   costs small enough to hide below the solver's tolerances. The tie-broken
   schedule is kept only if it is optimal, integral and free of overlaps;
   otherwise the first one stands.
6. Recompute every SOC from the returned net powers, list breaches of soft
   constraints from the schedule itself, check every hard constraint (1e-6) and
   compute the costs from the schedule with the real prices.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from schemas.flex_problem import ProcessDevice, SiteProblem, StorageDevice
from solvers.backend import RawSolution, Termination, get_backend, solve_on_face
from solvers.breaches import capacity_breaches
from solvers.commitments import commitment_cost
from solvers.commodities import coupling_mismatch, limits, net_flow
from solvers.decomposition import prove_by_devices
from solvers.formulation import Formulation, build
from solvers.groups import group_breaches, group_schedules, group_violations
from solvers.lp import CompiledLP
from solvers.modes import mode_violations
from solvers.peaks import peak_charges
from solvers.result import (
    Breach,
    CommodityCost,
    Costs,
    DeviceSchedule,
    ScheduleResult,
    Status,
)
from solvers.storage import soc_trajectory, soft_breach, waste_candidates

#: Hard constraints must hold within this (kW or kWh).
FEASIBILITY_TOL = 1e-6
#: Breaches smaller than this are solver noise, not breaches.
BREACH_TOL = 1e-6
#: Slack in the elastic (diagnosis) model above this names a conflict.
CONFLICT_TOL = 1e-9
#: From this many devices, the first solve lifts the connection's limits first.
DECOUPLE_MIN_DEVICES = 20
#: Rounds of binaries at overlapping and candidate steps before a device gets them at every step.
MAX_TARGETED_ROUNDS = 3


def schedule(
    problem: SiteProblem, solver: str = "highs", time_limit: float | None = None
) -> ScheduleResult:
    """Schedule every device of ``problem`` jointly; see the module docstring.

    ``solver`` is ``"highs"`` (highspy, the default) or ``"pyomo:<name>"``;
    ``time_limit`` is in seconds for the whole request.
    """
    t0 = time.perf_counter()
    backend = get_backend(solver)

    def remaining() -> float | None:
        return None if time_limit is None else time_limit - (time.perf_counter() - t0)

    build_s = solve_s = 0.0
    complementarity: dict[str, np.ndarray] = {}
    used_mip = False
    tb = time.perf_counter()
    form = build(problem)
    clp = form.lp.compile()
    clp.staged_columns = _coupling_columns(problem, form)
    clp.mode_choices = mode_choices = _mode_choices(problem)
    build_s += time.perf_counter() - tb
    relaxed_solve = True
    raw = backend.solve(clp, relax_integrality=True, time_limit=remaining())
    build_s += raw.build_seconds
    solve_s += raw.solve_seconds
    rounds = 0
    while raw.termination is Termination.OPTIMAL and raw.x is not None:
        added = False
        rounds += 1
        for s in form.site.storages:
            name = s.device.name
            have = complementarity.get(name, np.zeros(0, dtype=np.int64))
            new = np.setdiff1d(s.overlap_steps(raw.x), have)
            if len(new):
                # The overlapping steps and every step where wasting energy can pay;
                # after MAX_TARGETED_ROUNDS, every step of the device, so the number of
                # MILP solves stays small.
                if rounds > MAX_TARGETED_ROUNDS:
                    complementarity[name] = np.arange(s.device.n)
                else:
                    candidates = waste_candidates(problem, s.device)
                    complementarity[name] = np.union1d(np.union1d(have, new), candidates)
                added = True
        if not added and (not relaxed_solve or _integral(clp, raw.x)):
            break
        if rounds == 1 and added:
            # Many devices behind one connection: prove the optimum device by device.
            td = time.perf_counter()
            proof = prove_by_devices(problem, form, clp, raw, backend, complementarity, remaining)
            solve_s += time.perf_counter() - td
            if proof is not None:
                clp, raw, used_mip = proof.lp, proof.raw, True
                break
            # The attempt may have changed the bounds in the LP's solver: no warm start.
            raw = replace(raw, handle=None)
        tb = time.perf_counter()
        form = build(problem, complementarity)
        clp = form.lp.compile()
        clp.mode_choices = mode_choices
        build_s += time.perf_counter() - tb
        relaxed_solve = False
        used_mip = True
        raw = backend.solve(clp, time_limit=remaining())
        build_s += raw.build_seconds
        solve_s += raw.solve_seconds

    if raw.termination is Termination.OPTIMAL and raw.x is not None and clp.has_secondary:
        tol = _face_tolerance(raw.objective)
        # After a MILP, the tie-break keeps its binaries (which device charges or discharges
        # at the steps that needed them) and orders the rest: an LP, not a second search.
        face_lp = clp if relaxed_solve else clp.with_integers_fixed(raw.x)
        second = solve_on_face(
            backend, face_lp, raw, tol, relax_integrality=True, time_limit=remaining()
        )
        build_s += second.build_seconds
        solve_s += second.solve_seconds
        if (
            second.termination is Termination.OPTIMAL
            and second.x is not None
            and (not relaxed_solve or _integral(clp, second.x))
            and not any(len(s.overlap_steps(second.x)) for s in form.site.storages)
        ):
            raw = RawSolution(
                raw.termination, second.x, raw.objective, raw.solve_seconds, mip_gap=raw.mip_gap
            )
        elif relaxed_solve and clp.has_integers and second.x is not None:
            # The tie-break split a process over equal-cost placements: settle it as a MILP.
            face = clp.on_optimal_face(raw.objective, tol)
            second = backend.solve(face, time_limit=remaining())
            build_s += second.build_seconds
            solve_s += second.solve_seconds
            if second.termination is Termination.OPTIMAL and second.x is not None:
                if not any(len(s.overlap_steps(second.x)) for s in form.site.storages):
                    raw = RawSolution(raw.termination, second.x, raw.objective, raw.solve_seconds)
                    used_mip = True

    if raw.x is not None and any(len(s.overlap_steps(raw.x)) for s in form.site.storages):
        # The search stopped (time limit) before every overlap was resolved: no valid schedule.
        stopped = raw.termination if raw.termination is not Termination.OPTIMAL else None
        raw = RawSolution(stopped or Termination.TIME_LIMIT, None, None, raw.solve_seconds)
    result = _interpret(problem, form, raw, backend.name if solver == "highs" else solver)
    if raw.termination is Termination.INFEASIBLE:
        td = time.perf_counter()
        result = _diagnose(problem, form, backend, relaxed_solve, remaining(), result)
        solve_s += time.perf_counter() - td
    result.notes = list(problem.notes)
    result.used_binaries = used_mip
    result.timings = {
        "build": build_s,
        "solve": solve_s,
        "total": time.perf_counter() - t0,
    }
    return result


def _coupling_columns(problem: SiteProblem, form: Formulation) -> np.ndarray | None:
    """The site's flow columns, for a first solve without the connection's limits; or None.

    Many devices behind one connection make a model of independent chains
    coupled only by the site's capacity bounds on its import and export
    columns. Solved first without those bounds, the model falls apart into
    independent devices, and the optimum with the bounds restored is reached
    from that basis by few dual simplex steps (``solvers.highs_backend``;
    measured, 100 batteries x 192 steps: 3.2 s CPU against 6.5 s by interior
    point and 11 s by the dual simplex method from scratch). One long chain
    (1 battery x 8760 steps) gains nothing from it.
    """
    if len(problem.devices) < DECOUPLE_MIN_DEVICES or problem.grid.n * len(problem.devices) < 5000:
        return None
    site = form.site
    if site.consumption is None or site.production is None:
        return None
    return np.concatenate([site.consumption.index, site.production.index])


def _mode_choices(problem: SiteProblem) -> bool:
    """Whether a device of ``problem`` has operation modes (binaries choosing its band)."""
    return any(isinstance(d, StorageDevice) and d.operation_modes for d in problem.devices)


def _face_tolerance(optimum: float) -> float:
    """How far above the optimum the tie-breaking solve may go: floating-point rounding only.

    The bound row ``c x <= optimum`` holds with equality at the first solution,
    so the face is never empty; the slack of 1e-12 of the optimum only absorbs
    rounding in the reported optimum. The secondary objective uses whatever room
    it gets, so this is kept at rounding level: the tie-broken schedule costs the
    same as the first optimum (within about 1e-12 relative, plus at most HiGHS's
    primal feasibility tolerance of 1e-8 should it ever use it), and no real price
    difference can be traded for a tie-break.
    """
    return 1e-12 * max(1.0, abs(optimum))


def _integral(clp: CompiledLP, x: np.ndarray, tol: float = 1e-7) -> bool:
    if not clp.has_integers:
        return True
    v = x[clp.integer]
    return bool(np.all(np.abs(v - np.round(v)) <= tol))


def _interpret(
    problem: SiteProblem, form: Formulation, raw: RawSolution, solver: str
) -> ScheduleResult:
    """Turn a raw solution into a result; the only place that reads termination codes."""
    grid = problem.grid
    result = ScheduleResult(Status.UNKNOWN, grid, solver=solver)
    term = raw.termination
    if term is Termination.INFEASIBLE:
        result.status = Status.INFEASIBLE
        result.message = "infeasible: the hard constraints cannot all be met"
        return result
    if term is Termination.UNBOUNDED:
        result.status = Status.UNBOUNDED
        result.message = (
            "unbounded: the cost can fall without limit; give every device a "
            "power-capacity (or consumption-capacity and production-capacity)"
        )
        return result
    if raw.x is None:
        result.status = Status.TIME_LIMIT if term is Termination.TIME_LIMIT else Status.UNKNOWN
        result.message = f"{result.status}: the solver returned no schedule"
        return result

    x = raw.x
    dt = grid.dt_hours
    powers = form.site.device_power(x)
    schedules = []
    for dev, p in zip(problem.devices, powers, strict=True):
        if isinstance(dev, StorageDevice):
            soc = soc_trajectory(dev, p, dt) if dev.has_soc else None
            schedules.append(DeviceSchedule(dev.name, "storage", p, soc))
        else:
            schedules.append(DeviceSchedule(dev.name, "process", p))
    groups = group_schedules(problem, {s.sensor: s.power for s in schedules})
    result.schedules = schedules + groups
    electric = [p for d, p in zip(problem.devices, powers, strict=True) if _electric(d)]
    net = (
        np.sum(electric, axis=0) + problem.inflexible_power
        if electric
        else problem.inflexible_power
    )
    nets = {cg.commodity: net_flow(cg, problem.devices, powers) for cg in problem.commodities}
    breaches = list(_breaches(problem, schedules, net, nets))
    breaches += group_breaches(problem, groups, BREACH_TOL)
    violations = list(_hard_violations(problem, schedules, net, nets))
    violations += group_violations(problem, groups, FEASIBILITY_TOL)
    cons = np.maximum(net, 0.0)
    prod = np.maximum(-net, 0.0)
    by_commodity = {
        "electricity": CommodityCost(
            float(np.sum(problem.consumption_price * cons * dt)),
            float(np.sum(problem.production_price * prod * dt)),
        )
    }
    for cg in problem.commodities:
        flow = nets[cg.commodity]
        by_commodity[cg.commodity] = CommodityCost(
            float(np.sum(cg.consumption_price * np.maximum(flow, 0.0) * dt)),
            float(np.sum(cg.production_price * np.maximum(-flow, 0.0) * dt)),
        )
    result.costs = Costs(
        currency=problem.currency,
        consumption=sum(c.consumption for c in by_commodity.values()),
        production_revenue=sum(c.production_revenue for c in by_commodity.values()),
        breaches=float(sum(b.cost or 0.0 for b in breaches)),
        peak_consumption=_peak_cost(cons, problem.peak_consumption, problem.peak_consumption_price),
        peak_production=_peak_cost(prod, problem.peak_production, problem.peak_production_price),
        commitments={c.name: commitment_cost(net, c) for c in problem.commitments},
        commodities=by_commodity,
    )
    result.breaches = breaches
    if violations:
        result.status = Status.UNKNOWN
        result.message = "the solver's schedule violates " + _describe(violations)
        return result
    if term is Termination.TIME_LIMIT:
        result.status = Status.TIME_LIMIT
        gap = "" if raw.mip_gap is None else f" (gap {raw.mip_gap:.2%})"
        result.message = f"time limit reached: best schedule found, optimality not proven{gap}"
        return result
    if term is not Termination.OPTIMAL:
        result.status = Status.UNKNOWN
        result.message = "the solver ended without proving optimality"
        return result
    result.proven_optimal = True
    if breaches:
        result.status = Status.RELAXED
        result.message = (
            f"relaxed: {len(breaches)} soft constraint breach(es) at their breach prices: "
            + _describe(breaches)
        )
    else:
        result.status = Status.OPTIMAL
        result.message = "optimal"
    return result


def _electric(dev: object) -> bool:
    """Whether a device takes or gives electricity (processes always do)."""
    return getattr(dev, "commodity", "electricity") == "electricity"


def _peak_cost(flow: np.ndarray, baseline: np.ndarray, price: np.ndarray | None) -> float:
    """What the schedule's new peaks of ``flow`` cost (0 without a peak price)."""
    if price is None:
        return 0.0
    return float(sum(c.cost for c in peak_charges(flow, baseline, price)))


def _side(values: np.ndarray, limit: np.ndarray, above: bool) -> np.ndarray:
    """Amount by which ``values`` exceed (``above``) or fall short of ``limit``; 0 where nan."""
    lim = np.where(np.isnan(limit), np.inf if above else -np.inf, limit)
    d = values - lim if above else lim - values
    return np.maximum(d, 0.0)


def _breaches(
    problem: SiteProblem,
    schedules: list[DeviceSchedule],
    net: np.ndarray,
    nets: dict[str, np.ndarray],
) -> Iterable[Breach]:
    """Breaches of soft constraints, read from the schedule (not from slack columns)."""
    grid, bp = problem.grid, problem.breach_prices
    for dev, s in zip(problem.devices, schedules, strict=True):
        if not isinstance(dev, StorageDevice) or s.soc is None:
            continue
        targets_soft = bp.soc_minima is not None and bp.soc_maxima is not None
        checks = (
            ("soc-minima", dev.soc_minima, False, bp.soc_minima),
            ("soc-maxima", dev.soc_maxima, True, bp.soc_maxima),
            ("soc-targets", dev.soc_targets, False, bp.soc_minima if targets_soft else None),
            ("soc-targets", dev.soc_targets, True, bp.soc_maxima if targets_soft else None),
        )
        for name, limit, above, price in checks:
            if price is None:
                continue
            amount = _side(s.soc, limit, above)
            for k in np.flatnonzero(amount > BREACH_TOL):
                a = float(amount[k])
                yield Breach(name, dev.name, grid.step_start(int(k)), a, "kWh", price, a * price)
    site_checks = (
        ("site-consumption-capacity", np.maximum(net, 0.0), problem.site_consumption_capacity,
         bp.site_consumption),
        ("site-production-capacity", np.maximum(-net, 0.0), problem.site_production_capacity,
         bp.site_production),
    )  # fmt: skip
    for dev, s in zip(problem.devices, schedules, strict=True):
        if not isinstance(dev, StorageDevice):
            continue
        for name, flow, cap, price in (
            ("consumption-capacity", np.maximum(s.power, 0.0), dev.consumption_capacity,
             bp.device_consumption),
            ("production-capacity", np.maximum(-s.power, 0.0), dev.production_capacity,
             bp.device_production),
        ):  # fmt: skip
            if soft_breach(cap, price):
                yield from capacity_breaches(grid, name, dev.name, flow, cap, price, BREACH_TOL)
    for name, flow, cap, price in site_checks:
        if price is not None:
            yield from capacity_breaches(grid, name, None, flow, cap, price, BREACH_TOL)
    for cg in problem.commodities:
        flows = _sides(nets[cg.commodity])
        for name, side, cap, price in limits(cg):
            if price is not None:
                yield from capacity_breaches(grid, name, None, flows[side], cap, price, BREACH_TOL)


def _sides(net: np.ndarray) -> dict[str, np.ndarray]:
    """A net flow's import (consumption) and export (production), kW per step."""
    return {"consumption": np.maximum(net, 0.0), "production": np.maximum(-net, 0.0)}


def _hard_violations(
    problem: SiteProblem,
    schedules: list[DeviceSchedule],
    net: np.ndarray,
    nets: dict[str, np.ndarray],
) -> Iterable[Breach]:
    """Hard constraints the schedule breaks by more than ``FEASIBILITY_TOL``."""
    grid, bp = problem.grid, problem.breach_prices
    for dev, s in zip(problem.devices, schedules, strict=True):
        if isinstance(dev, ProcessDevice):
            continue
        p = s.power
        # A port without a state of charge has no SOC constraint to check.
        soc = s.soc if s.soc is not None else np.zeros(grid.n + 1)
        cons_cap = dev.consumption_capacity
        if soft_breach(cons_cap, bp.device_consumption):
            cons_cap = dev.power_capacity
        prod_cap = dev.production_capacity
        if soft_breach(prod_cap, bp.device_production):
            prod_cap = dev.power_capacity
        checks = [
            ("soc-min", soc[1:], dev.soc_min[1:], False, 1, "kWh"),
            ("soc-max", soc[1:], dev.soc_max[1:], True, 1, "kWh"),
            ("consumption-capacity", np.maximum(p, 0), cons_cap, True, 0, "kW"),
            ("production-capacity", np.maximum(-p, 0), prod_cap, True, 0, "kW"),
        ]
        targets_soft = bp.soc_minima is not None and bp.soc_maxima is not None
        if bp.soc_minima is None:
            checks += [("soc-minima", soc, dev.soc_minima, False, 0, "kWh")]
        if bp.soc_maxima is None:
            checks += [("soc-maxima", soc, dev.soc_maxima, True, 0, "kWh")]
        if not targets_soft:
            checks += [("soc-targets", soc, dev.soc_targets, False, 0, "kWh")]
            checks += [("soc-targets", soc, dev.soc_targets, True, 0, "kWh")]
        for name, values, limit, above, offset, unit in checks:
            amount = _side(values, limit, above)
            for k in np.flatnonzero(amount > FEASIBILITY_TOL):
                when = grid.step_start(int(k) + offset)
                yield Breach(name, dev.name, when, float(amount[k]), unit)
        yield from mode_violations(grid, dev, p, FEASIBILITY_TOL)
    cons, prod = np.maximum(net, 0.0), np.maximum(-net, 0.0)
    site_checks = [
        ("site-power-capacity", cons, problem.site_power_capacity),
        ("site-power-capacity", prod, problem.site_power_capacity),
    ]
    if bp.site_consumption is None:
        site_checks.append(("site-consumption-capacity", cons, problem.site_consumption_capacity))
    if bp.site_production is None:
        site_checks.append(("site-production-capacity", prod, problem.site_production_capacity))
    for cg in problem.commodities:
        flows = _sides(nets[cg.commodity])
        for side in ("consumption", "production"):
            site_checks.append(
                (f"{cg.commodity} site-power-capacity", flows[side], cg.site_power_capacity)
            )
        for name, side, cap, price in limits(cg):
            if price is None:
                site_checks.append((name, flows[side], cap))
    for name, flow, cap in site_checks:
        amount = _side(flow, cap, True)
        for t in np.flatnonzero(amount > FEASIBILITY_TOL):
            yield Breach(name, None, grid.step_start(int(t)), float(amount[t]), "kW")
    powers = {s.sensor: s.power for s in schedules}
    for coupling in problem.couplings:
        amount = coupling_mismatch(coupling, powers)
        for t in np.flatnonzero(amount > FEASIBILITY_TOL):
            yield Breach("coupling", coupling.name, grid.step_start(int(t)), float(amount[t]), "kW")


def _describe(items: list[Breach], limit: int = 5) -> str:
    parts = []
    for b in items[:limit]:
        who = f" of {b.device!r}" if b.device else ""
        parts.append(f"{b.constraint}{who} at {b.datetime.isoformat()} by {b.amount:.6g} {b.unit}")
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return "; ".join(parts) + more


def _diagnose(
    problem: SiteProblem,
    form: Formulation,
    backend: object,
    relax_integrality: bool,
    time_limit: float | None,
    result: ScheduleResult,
) -> ScheduleResult:
    """Name the conflicting constraints: the blocks the elastic model had to relax."""
    eclp = form.lp.compile(elastic=True)
    raw = backend.solve(eclp, relax_integrality=relax_integrality, time_limit=time_limit)
    conflicts: list[Breach] = []
    if raw.x is not None:
        grid = problem.grid
        for cb in eclp.blocks:
            block = cb.block
            soft = block.soft
            sides = (
                (cb.slack_lower, soft is not None and soft.price_lower is not None),
                (cb.slack_upper, soft is not None and soft.price_upper is not None),
            )
            for cols, priced in sides:
                if cols is None or priced:
                    continue
                for i in np.flatnonzero(cols >= 0):
                    v = float(raw.x[cols[i]])
                    if v > CONFLICT_TOL:
                        step = int(block.steps[cb.kept[i]])
                        when = grid.step_start(step)
                        conflicts.append(
                            Breach(block.constraint, block.device, when, v, block.unit)
                        )
    result.conflicts = conflicts
    if conflicts:
        result.message = (
            "infeasible: the request cannot be met even with every soft constraint relaxed; "
            "it would need to give way at: " + _describe(conflicts)
        )
    else:
        result.message = (
            "infeasible: the hard constraints cannot all be met (no single constraint "
            "could be named; check soc-at-start against soc-min, soc-max and the power limits)"
        )
    return result
