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
        h = highspy.Highs()
        for key, value in OPTIONS.items():
            h.setOptionValue(key, value)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(max(time_limit, 1e-3)))
        inf = highspy.kHighsInf
        mip = lp.has_integers and not relax_integrality
        if lp.interior_point and not mip:
            # Interior point with crossover: a basic optimum, so the tie-breaking
            # solve still restarts from a basis (with the simplex method).
            h.setOptionValue("solver", "ipm")
        integrality = lp.integer.astype(np.int32) if mip else np.zeros(lp.num_col, np.int32)
        h.passModel(
            lp.num_col,
            lp.num_row,
            len(lp.a_value),
            int(highspy.MatrixFormat.kRowwise),
            int(highspy.ObjSense.kMinimize),
            0.0,
            lp.c,
            np.where(np.isfinite(lp.lb), lp.lb, -inf),
            np.where(np.isfinite(lp.ub), lp.ub, inf),
            np.where(np.isfinite(lp.row_lower), lp.row_lower, -inf),
            np.where(np.isfinite(lp.row_upper), lp.row_upper, inf),
            lp.a_start,
            lp.a_index,
            lp.a_value,
            integrality,
        )
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        h.run()
        return self._read(h, lp, mip, time.perf_counter() - t1, build)

    def _read(
        self, h: highspy.Highs, lp: CompiledLP, mip: bool, seconds: float, build: float
    ) -> RawSolution:
        status = _STATUS.get(h.getModelStatus(), Termination.UNKNOWN)
        info = h.getInfo()
        has_values = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        x = None
        objective = None
        if status in (Termination.OPTIMAL, Termination.TIME_LIMIT) and has_values:
            x = np.asarray(h.getSolution().col_value, dtype=float)
            objective = float(info.objective_function_value)
        if status is Termination.OPTIMAL and x is None and lp.num_col == 0:
            x = np.zeros(0)
            objective = 0.0
        gap = float(info.mip_gap) if mip and x is not None else None
        return RawSolution(status, x, objective, seconds, build, gap, handle=(h, lp, mip))

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
        nz = np.flatnonzero(lp.c).astype(np.int32)
        h.addRow(-highspy.kHighsInf, first.objective + tolerance, len(nz), nz, lp.c[nz])
        h.changeColsCost(lp.num_col, np.arange(lp.num_col, dtype=np.int32), lp.c2)
        if time_limit is not None:
            h.setOptionValue("time_limit", float(max(time_limit, 1e-3)))
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
