"""The default back end: the compiled arrays go straight into HiGHS via highspy.

One ``passModel`` call with the CSR matrix; no per-variable Python calls. The
model status is mapped with an explicit table; anything not in it is
``UNKNOWN``.

HiGHS in a shared process: HiGHS's thread scheduler belongs to the whole
process and is sized by the first ``run`` that starts it. An instance that asks
for a different ``threads`` value later gets no solve at all (model status
``kNotset``), and the first instance's value pins every later user. So no
instance here sets ``threads`` (or any other process-wide state): a solve works
whatever ran HiGHS before in the same process, and a solve that starts the
scheduler starts it exactly as any default user would.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time

import highspy
import numpy as np

from solvers.backend import RawSolution, Termination
from solvers.lp import CompiledLP

_STATUS = {
    highspy.HighsModelStatus.kOptimal: Termination.OPTIMAL,
    highspy.HighsModelStatus.kInfeasible: Termination.INFEASIBLE,
    highspy.HighsModelStatus.kUnbounded: Termination.UNBOUNDED,
    highspy.HighsModelStatus.kUnboundedOrInfeasible: Termination.INFEASIBLE,
    highspy.HighsModelStatus.kTimeLimit: Termination.TIME_LIMIT,
    highspy.HighsModelStatus.kModelEmpty: Termination.OPTIMAL,
}

#: A MILP is optimal within this relative gap to its bound (HiGHS's own default; the gap is
#: reported with the schedule). 1e-9 took ten times longer on V2G fleets, for cents.
MIP_REL_GAP = 1e-4

#: Options for every solve: quiet, tight primal feasibility. Per instance only: never
#: ``threads``, which would conflict with the process-wide scheduler (module docstring).
OPTIONS = {
    "output_flag": False,
    "log_to_console": False,
    "primal_feasibility_tolerance": 1e-8,
    "mip_feasibility_tolerance": 1e-8,
    "mip_rel_gap": MIP_REL_GAP,
}


#: HiGHS options switched off for one device's charge-or-discharge MILP.
DEVICE_MIP_OFF = (
    "mip_allow_restart",
    "mip_heuristic_run_rins",
    "mip_heuristic_run_rens",
    "mip_heuristic_run_root_reduced_cost",
)

#: LP solves skip presolve unless more than this share of the columns is fixed.
PRESOLVE_FIXED_SHARE = 0.01

#: HiGHS's ``simplex_strategy`` value for the primal simplex method.
PRIMAL_SIMPLEX = 4


def _silence_banner() -> None:
    """Create the process's first ``Highs`` with stdout muted.

    highspy prints its copyright banner on the first instance, to the C-level
    stdout, before any option can switch output off; the CLI's stdout must hold
    only JSON.
    """
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        highspy.Highs()
        try:
            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):  # pragma: no cover - non-POSIX libc
            pass
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


_silence_banner()


class HighsBackend:
    """Solve a ``CompiledLP`` with highspy."""

    name = "highs"

    def solve(
        self, lp: CompiledLP, *, relax_integrality: bool = False, time_limit: float | None = None
    ) -> RawSolution:
        """Pass the arrays to HiGHS, run it and read the values if it found any."""
        t0 = time.perf_counter()
        if np.any(lp.lb > lp.ub + 1e-12):
            # Folded bounds already contradict each other: infeasible without a solve.
            return RawSolution(Termination.INFEASIBLE, None, None, time.perf_counter() - t0)
        empty = np.diff(lp.a_start) == 0
        if np.any(empty & ((lp.row_lower > 1e-9) | (lp.row_upper < -1e-9))):
            # A row without columns that excludes 0 (e.g. a process with no placement);
            # HiGHS calls a model without columns empty (optimal) whatever its rows say.
            return RawSolution(Termination.INFEASIBLE, None, None, time.perf_counter() - t0)
        h = highspy.Highs()
        for key, value in OPTIONS.items():
            h.setOptionValue(key, value)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(max(time_limit, 1e-3)))
        inf = highspy.kHighsInf
        mip = lp.has_integers and not relax_integrality
        staged = lp.staged_columns if lp.staged_columns is not None and not mip else None
        lb = np.where(np.isfinite(lp.lb), lp.lb, -inf)
        ub = np.where(np.isfinite(lp.ub), lp.ub, inf)
        if staged is not None and len(staged):
            # First stage: the coupling upper bounds lifted (restored below).
            ub = ub.copy()
            ub[staged] = inf
        if not mip and np.count_nonzero(lp.lb == lp.ub) <= PRESOLVE_FIXED_SHARE * lp.num_col:
            # Without fixed columns to remove, presolve finds next to nothing in these models
            # (100 batteries x 192 steps: 174 of 19392 rows) and costs more than it saves:
            # 1 battery x 8760 steps, 0.25 s CPU without against 0.33 s with; the fleet's
            # first stage 0.85 s against 1.24 s. With many fixed columns (EVs away, binaries
            # fixed for the tie-break) it pays: 100 V2G EVs' tie-break 0.2 s against 0.9 s.
            h.setOptionValue("presolve", "off")
        if mip and lp.mode_choices:
            # Operation-mode binaries: restarts after reduced-cost fixing (HiGHS's default)
            # cost more than they save. Measured on 20 seeded one-day sites with an on/off
            # heat pump (``seeded_group_modes_site``, ``bench_groups_modes.py``): 21 s in all
            # against 32 s, the slowest 4 s against 8 s, none slower by more than 0.3 s.
            # Charge/discharge binaries keep restarts: 10 V2G EVs under negative prices
            # took 1.8 s without them against 0.6 s, 50 EVs 9 s against 4.4 s.
            h.setOptionValue("mip_allow_restart", False)
        if mip and lp.device_choices:
            # One device's charge-or-discharge binaries (``solvers.decomposition``): the
            # sub-MIP heuristics and restarts cost more than they save on these small
            # MILPs, which close in a few nodes. Measured on the devices a 100-EV fleet
            # under a negative-price evening needs: 6 MILPs in 0.30 s against 1.2 s
            # with HiGHS's defaults (200 EVs: 7 in 0.38 s against 1.5 s).
            for option in DEVICE_MIP_OFF:
                h.setOptionValue(option, False)
        integrality = lp.integer.astype(np.int32) if mip else np.zeros(lp.num_col, np.int32)
        h.passModel(
            lp.num_col,
            lp.num_row,
            len(lp.a_value),
            int(highspy.MatrixFormat.kRowwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            lp.c,
            lb,
            ub,
            np.where(np.isfinite(lp.row_lower), lp.row_lower, -inf),
            np.where(np.isfinite(lp.row_upper), lp.row_upper, inf),
            lp.a_start,
            lp.a_index,
            lp.a_value,
            integrality,
        )
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        if staged is not None and len(staged):
            self._decoupled_stage(h, lp, staged)
        h.run()
        return self._read(h, lp, mip, time.perf_counter() - t1, build)

    @staticmethod
    def _decoupled_stage(h: highspy.Highs, lp: CompiledLP, staged: np.ndarray) -> None:
        """Solve with the coupling bounds lifted, then restore them in ``h``.

        Without the connection's limits a fleet falls apart into independent
        devices, which the dual simplex method solves quickly; the restored
        bounds leave that optimal basis dual feasible, so the next ``run``
        continues with the dual simplex method from it and only has to repair
        the steps where the connection binds (measured: 100 batteries x 192
        steps, 3.2 s CPU in all, against 6.5 s by interior point from scratch and
        11 s by the dual simplex method from scratch). If the first stage ends
        otherwise than optimal (e.g. unbounded without the limits), the solver
        starts afresh on the restored model. HiGHS's time limit counts the
        instance's cumulative run time, so it covers both stages as set.
        """
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            h.clearSolver()
        inf = highspy.kHighsInf
        idx = np.asarray(staged, dtype=np.int32)
        h.changeColsBounds(
            len(idx),
            idx,
            np.where(np.isfinite(lp.lb[idx]), lp.lb[idx], -inf),
            np.where(np.isfinite(lp.ub[idx]), lp.ub[idx], inf),
        )

    def _read(
        self, h: highspy.Highs, lp: CompiledLP, mip: bool, seconds: float, build: float
    ) -> RawSolution:
        status = _STATUS.get(h.getModelStatus(), Termination.UNKNOWN)
        info = h.getInfo()
        has_values = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        x = None
        objective = None
        sol = None
        if status in (Termination.OPTIMAL, Termination.TIME_LIMIT) and has_values:
            sol = h.getSolution()
            x = np.asarray(sol.col_value, dtype=float)
            objective = float(info.objective_function_value)
        if status is Termination.OPTIMAL and x is None and lp.num_col == 0:
            x = np.zeros(0)
            objective = 0.0
        gap = float(info.mip_gap) if mip and x is not None else None
        bound = row_dual = None
        if mip and x is not None:
            bound = float(info.mip_dual_bound)
        elif status is Termination.OPTIMAL and sol is not None and sol.dual_valid:
            bound = objective
            row_dual = np.asarray(sol.row_dual, dtype=float)
        return RawSolution(
            status, x, objective, seconds, build, gap, bound, row_dual, handle=(h, lp, mip)
        )

    def resolve_with_bounds(
        self,
        lp: CompiledLP,
        first: RawSolution,
        columns: np.ndarray,
        *,
        time_limit: float | None = None,
    ) -> RawSolution:
        """Re-solve the LP ``first`` solved with ``lp``'s bounds on ``columns``, from its basis.

        The basis stays dual feasible under new column bounds, so the dual simplex
        method repairs only what the changed bounds cut off (measured, 100 V2G
        EVs with directions fixed at 1082 steps: 128 iterations and 0.08 s, where
        a solve from scratch takes 4850 and 0.31 s; 200 EVs: 0.24 s against
        0.86 s).
        """
        handle = first.handle
        same = isinstance(handle, tuple) and handle[2] is False and handle[1].num_col == lp.num_col
        if not same:
            return self.solve(lp, relax_integrality=True, time_limit=time_limit)
        h = handle[0]
        t0 = time.perf_counter()
        idx = np.asarray(columns, dtype=np.int32)
        inf = highspy.kHighsInf
        h.changeColsBounds(
            len(idx),
            idx,
            np.where(np.isfinite(lp.lb[idx]), lp.lb[idx], -inf),
            np.where(np.isfinite(lp.ub[idx]), lp.ub[idx], inf),
        )
        if time_limit is not None:
            h.setOptionValue("time_limit", float(h.getRunTime() + max(time_limit, 1e-3)))
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        h.run()
        return self._read(h, lp, False, time.perf_counter() - t1, build)

    def solve_on_face(
        self,
        lp: CompiledLP,
        first: RawSolution,
        tolerance: float,
        *,
        relax_integrality: bool = False,
        time_limit: float | None = None,
    ) -> RawSolution:
        """The tie-breaking solve, warm: bound row added to the solved model, costs swapped.

        The first solve's optimal basis stays primal feasible (its solution meets
        the new row with equality), so HiGHS restarts from it instead of solving
        a model with a dense extra row from scratch, which takes several times
        longer on the degenerate optimal faces of scheduling problems. For an LP
        the primal simplex method continues from that basis directly.
        """
        handle = first.handle
        mip = lp.has_integers and not relax_integrality
        if not (isinstance(handle, tuple) and handle[1] is lp and handle[2] == mip):
            face = lp.on_optimal_face(first.objective, tolerance)
            return self.solve(face, relax_integrality=relax_integrality, time_limit=time_limit)
        h = handle[0]
        t0 = time.perf_counter()
        if not mip:
            pinned = _pinned_columns(h, lp)
            if pinned is None:
                # The optimal face is one point: the first solution is the tie-broken one.
                return RawSolution(Termination.OPTIMAL, first.x, first.objective, 0.0)
            idx, value = pinned
            # Columns that cannot move on the optimal face are fixed where they are: the
            # primal simplex method then pivots only among the tied ones (100 batteries x
            # 192 steps: 0.04 s instead of 0.35 s).
            h.changeColsBounds(len(idx), idx, value, value)
        nz = np.flatnonzero(lp.c).astype(np.int32)
        h.addRow(-highspy.kHighsInf, first.objective + tolerance, len(nz), nz, lp.c[nz])
        h.changeColsCost(lp.num_col, np.arange(lp.num_col, dtype=np.int32), lp.c2)
        if time_limit is not None:
            # HiGHS counts the instance's run time across runs: extend it by what is left.
            h.setOptionValue("time_limit", float(h.getRunTime() + max(time_limit, 1e-3)))
        h.setOptionValue("solver", "choose")
        if not mip:
            # The basis stays primal feasible: primal simplex goes on from it, where the
            # default (dual) simplex first repairs dual feasibility lost by the new costs
            # (measured: 100 batteries x 192 steps, 0.2 s instead of 3.6 s).
            h.setOptionValue("simplex_strategy", PRIMAL_SIMPLEX)
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        h.run()
        return self._read(h, lp, mip, time.perf_counter() - t1, build)


#: Reduced costs and row duals at or below this are taken as zero (a possible tie):
#: HiGHS's dual feasibility tolerance.
DUAL_ZERO = 1e-7


def _pinned_columns(h: highspy.Highs, lp: CompiledLP) -> tuple[np.ndarray, np.ndarray] | None:
    """Columns the LP optimum in ``h`` pins to their bound, and those bounds; None if unique.

    Every optimum meets complementary slackness with the dual solution found: a
    column at a bound with a non-zero reduced cost stays at that bound, an
    inequality row at a side with a non-zero dual stays at that side. If no
    column at a bound and no row at a side has a zero reduced cost or dual, the
    remaining (basic) values follow from them, so the optimal face is a single
    point and a tie-break cannot change it (measured: 1 battery x 8760 steps; a
    fleet's optimum is degenerate). A zero reduced cost may be a degenerate
    basic column or a real tie: not pinned.
    """
    sol = h.getSolution()
    if not (sol.value_valid and sol.dual_valid):
        return np.zeros(0, dtype=np.int32), np.zeros(0)
    x = np.asarray(sol.col_value)
    rc = np.asarray(sol.col_dual)
    free = lp.lb < lp.ub
    at_lower = np.abs(x - lp.lb) <= 1e-9
    at_upper = np.abs(x - lp.ub) <= 1e-9
    at_bound = free & (at_lower | at_upper)
    moving = np.abs(rc) > DUAL_ZERO
    pinned = np.flatnonzero(at_bound & moving).astype(np.int32)
    value = np.where(at_lower[pinned], lp.lb[pinned], lp.ub[pinned])
    act = np.asarray(sol.row_value)
    dual = np.asarray(sol.row_dual)
    ranged = lp.row_lower < lp.row_upper
    at_side = (np.abs(act - lp.row_lower) <= 1e-9) | (np.abs(act - lp.row_upper) <= 1e-9)
    unique = not np.any(at_bound & ~moving) and not np.any(
        ranged & at_side & (np.abs(dual) <= DUAL_ZERO)
    )
    return None if unique else (pinned, value)


def _unique_optimum(h: highspy.Highs, lp: CompiledLP) -> bool:
    """Whether the LP optimum just found in ``h`` is the only one (see ``_pinned_columns``)."""
    return _pinned_columns(h, lp) is None
