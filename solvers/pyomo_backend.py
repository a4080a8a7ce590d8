"""The pyomo back end: the same compiled arrays as a pyomo model, for any pyomo solver.

One indexed ``Var`` per column block and one indexed ``Constraint`` per row block,
named after the blocks (``bat_charge``, ``bat_soc_minima``), so a written model
reads like the formulation. Slower than highspy (pyomo's translation dominates);
use it for solvers HiGHS is not, and as the equivalence check in the tests.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression
from pyomo.opt import SolverStatus, TerminationCondition

from schemas.errors import SolverError
from solvers.backend import RawSolution, Termination
from solvers.lp import CompiledLP

_TERMINATION = {
    TerminationCondition.optimal: Termination.OPTIMAL,
    TerminationCondition.globallyOptimal: Termination.OPTIMAL,
    TerminationCondition.locallyOptimal: Termination.OPTIMAL,
    TerminationCondition.infeasible: Termination.INFEASIBLE,
    TerminationCondition.infeasibleOrUnbounded: Termination.INFEASIBLE,
    TerminationCondition.unbounded: Termination.UNBOUNDED,
    TerminationCondition.maxTimeLimit: Termination.TIME_LIMIT,
}

#: The time-limit option's name per solver (others get no time limit option).
_TIME_LIMIT_OPTION = {
    "appsi_highs": "time_limit",
    "highs": "time_limit",
    "cbc": "seconds",
    "glpk": "tmlim",
    "gurobi": "TimeLimit",
    "gurobi_direct": "TimeLimit",
    "cplex": "timelimit",
    "scip": "limits/time",
}


def _name(text: str) -> str:
    return re.sub(r"\W", "_", text)


def build_model(lp: CompiledLP, relax_integrality: bool = False) -> tuple[pyo.ConcreteModel, list]:
    """Build a pyomo model from ``lp``; return it and its variables in column order."""
    m = pyo.ConcreteModel()
    columns: list = [None] * lp.num_col
    lb = [None if not np.isfinite(v) else float(v) for v in lp.lb]
    ub = [None if not np.isfinite(v) else float(v) for v in lp.ub]
    cost_terms = []
    for block in lp.columns:
        idx = range(block.size)
        s = block.start
        integer = bool(lp.integer[s : s + block.size].any()) and not relax_integrality
        domain = pyo.Integers if integer else pyo.Reals

        def bounds(_m: pyo.ConcreteModel, i: int, s: int = s) -> tuple:
            return (lb[s + i], ub[s + i])

        var = pyo.Var(idx, domain=domain, bounds=bounds)
        m.add_component(_name(block.name), var)
        for i in idx:
            columns[s + i] = var[i]
        c = lp.c[s : s + block.size]
        nz = np.flatnonzero(c)
        if len(nz):
            cost_terms.append(
                LinearExpression(
                    constant=0.0,
                    linear_coefs=[float(v) for v in c[nz]],
                    linear_vars=[var[int(i)] for i in nz],
                )
            )
    m.objective = pyo.Objective(expr=sum(cost_terms) if cost_terms else 0.0, sense=pyo.minimize)
    start, index, value = lp.a_start, lp.a_index, lp.a_value
    for name, r0, r1 in lp.row_block_slices:

        def rule(_m: pyo.ConcreteModel, i: int, r0: int = r0) -> object:
            r = r0 + i
            a, b = start[r], start[r + 1]
            expr = LinearExpression(
                constant=0.0,
                linear_coefs=[float(v) for v in value[a:b]],
                linear_vars=[columns[j] for j in index[a:b]],
            )
            lo, up = lp.row_lower[r], lp.row_upper[r]
            if a == b:
                # An empty row: feasible or not on its bounds alone.
                ok = (not np.isfinite(lo) or lo <= 0) and (not np.isfinite(up) or up >= 0)
                return pyo.Constraint.Feasible if ok else pyo.Constraint.Infeasible
            if lo == up:
                return expr == float(lo)
            return (
                float(lo) if np.isfinite(lo) else None,
                expr,
                float(up) if np.isfinite(up) else None,
            )

        m.add_component(_name(name), pyo.Constraint(range(r1 - r0), rule=rule))
    return m, columns


class PyomoBackend:
    """Solve a ``CompiledLP`` through pyomo with the named solver."""

    def __init__(self, solver: str) -> None:
        self.solver = solver
        self.name = f"pyomo:{solver}"

    def solve(
        self, lp: CompiledLP, *, relax_integrality: bool = False, time_limit: float | None = None
    ) -> RawSolution:
        """Build the pyomo model, run the solver and read the values if there are any."""
        t0 = time.perf_counter()
        opt = pyo.SolverFactory(self.solver)
        if opt is None or not opt.available(exception_flag=False):
            raise SolverError(f"pyomo solver {self.solver!r} is not available here")
        if np.any(lp.lb > lp.ub + 1e-12):
            return RawSolution(Termination.INFEASIBLE, None, None, time.perf_counter() - t0)
        m, columns = build_model(lp, relax_integrality)
        option = _TIME_LIMIT_OPTION.get(self.solver)
        if time_limit is not None and option:
            opt.options[option] = float(max(time_limit, 1e-3))
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        try:
            results = opt.solve(m, load_solutions=False)
        except (RuntimeError, ValueError) as exc:  # solver crashed or refused the model
            raise SolverError(f"pyomo solver {self.solver!r} failed: {exc}") from exc
        cond = results.solver.termination_condition
        term = _TERMINATION.get(cond, Termination.UNKNOWN)
        if results.solver.status is SolverStatus.aborted and term is Termination.UNKNOWN:
            term = Termination.TIME_LIMIT
        x = objective = None
        if term in (Termination.OPTIMAL, Termination.TIME_LIMIT) and len(results.solution) > 0:
            m.solutions.load_from(results)
            x = np.array([pyo.value(v, exception=False) or 0.0 for v in columns], dtype=float)
            objective = float(pyo.value(m.objective))
        return RawSolution(term, x, objective, time.perf_counter() - t1, build)
