"""What a back end returns, and the one place solver names are resolved.

A back end takes a ``CompiledLP`` and returns a ``RawSolution`` whose
``termination`` is one of a closed set of values. Back ends map their own
status codes to it with explicit tables (unknown codes map to ``UNKNOWN``);
nobody reads a solver's message text.
"""

from __future__ import annotations

from dataclasses import dataclass
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
