"""What a back end returns, and the one place solver names are resolved.

A back end takes a ``CompiledLP`` and returns a ``RawSolution`` whose
``termination`` is one of a closed set of values. Back ends map their own
status codes to it with explicit tables (unknown codes map to ``UNKNOWN``);
nobody reads a solver's message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

import numpy as np

from schemas.errors import InputError
from solvers.lp import CompiledLP


class Termination(StrEnum):
    """How a solve ended, independent of the solver."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time-limit"
    UNKNOWN = "unknown"


@dataclass
class RawSolution:
    """A back end's answer: values only when ``has_solution``."""

    termination: Termination
    x: np.ndarray | None
    objective: float | None
    solve_seconds: float
    build_seconds: float = 0.0
    mip_gap: float | None = None
    #: A proven lower bound on the optimum: a MILP's dual bound, an LP's objective.
    bound: float | None = None
    #: An LP's row duals (HiGHS's sign: reduced costs are ``c - A^T row_dual``), if read.
    row_dual: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: The back end's solver object, kept so a tie-breaking solve can start from it.
    handle: object | None = field(default=None, repr=False, compare=False)

    @property
    def has_solution(self) -> bool:
        """Whether primal values were returned."""
        return self.x is not None


class Backend(Protocol):
    """Solves compiled programs."""

    name: str

    def solve(
        self, lp: CompiledLP, *, relax_integrality: bool = False, time_limit: float | None = None
    ) -> RawSolution:
        """Solve ``lp`` (as an LP when ``relax_integrality``) within ``time_limit`` seconds."""
        ...


def solve_on_face(
    backend: Backend,
    lp: CompiledLP,
    first: RawSolution,
    tolerance: float,
    *,
    relax_integrality: bool = False,
    time_limit: float | None = None,
) -> RawSolution:
    """Minimise ``lp.c2`` over the solutions of ``lp`` costing at most ``first.objective``.

    A back end with its own ``solve_on_face`` (HiGHS: add the bound row to the
    solved model and restart from its optimal basis) uses it; any other solves
    ``lp.on_optimal_face`` from scratch.
    """
    own = getattr(backend, "solve_on_face", None)
    if own is not None:
        return own(lp, first, tolerance, relax_integrality=relax_integrality, time_limit=time_limit)
    face = lp.on_optimal_face(first.objective, tolerance)
    return backend.solve(face, relax_integrality=relax_integrality, time_limit=time_limit)


def resolve_with_bounds(
    backend: Backend,
    lp: CompiledLP,
    first: RawSolution,
    columns: np.ndarray,
    *,
    time_limit: float | None = None,
) -> RawSolution:
    """Solve the LP ``lp``: the one ``first`` solved, with new bounds on ``columns``.

    A back end with its own ``resolve_with_bounds`` (HiGHS: change the bounds in
    the solved model and go on from its basis) uses it; any other solves ``lp``
    from scratch.
    """
    own = getattr(backend, "resolve_with_bounds", None)
    if own is not None:
        return own(lp, first, columns, time_limit=time_limit)
    return backend.solve(lp, relax_integrality=True, time_limit=time_limit)


def get_backend(name: str) -> Backend:
    """Return the back end for ``"highs"`` or ``"pyomo:<solver>"`` (e.g. ``pyomo:appsi_highs``)."""
    if name == "highs":
        from solvers.highs_backend import HighsBackend

        return HighsBackend()
    if name.startswith("pyomo:") and len(name) > len("pyomo:"):
        from solvers.pyomo_backend import PyomoBackend

        return PyomoBackend(name.split(":", 1)[1])
    raise InputError(
        f"unknown solver {name!r}; use 'highs' or 'pyomo:NAME' (e.g. 'pyomo:appsi_highs')",
        "solver",
    )
