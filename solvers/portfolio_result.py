"""What a portfolio request returns: one ``ScheduleResult`` per site plus the market terms.

``PortfolioResult.to_json(unit)`` is ``flexstream schedule --portfolio``'s
JSON: each site's object is exactly the single-site command's
(``ScheduleResult.to_json``) with its ``name``; the portfolio's own costs are
the market terms on the sum of the sites' net powers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas.flex_problem import TimeGrid
from schemas.schedule import Status
from solvers.result import UNITS, ScheduleResult, _clean, _iso_duration

#: From worst to best: a portfolio's status is the worst of its sites'.
_SEVERITY = (
    Status.INFEASIBLE,
    Status.UNBOUNDED,
    Status.UNKNOWN,
    Status.TIME_LIMIT,
    Status.RELAXED,
    Status.OPTIMAL,
)


def combine_status(statuses: list[Status]) -> Status:
    """The worst of the sites' statuses (``unknown`` for one not in the solver's set)."""
    ranks = [_SEVERITY.index(s) if s in _SEVERITY else 2 for s in statuses]
    return _SEVERITY[min(ranks)] if ranks else Status.UNKNOWN


@dataclass
class PortfolioCosts:
    """The market terms in ``currency``: energy on the net position and commitment costs."""

    currency: str
    consumption: float = 0.0
    production_revenue: float = 0.0
    #: What deviating from each portfolio commitment costs, by name.
    commitments: dict[str, float] = field(default_factory=dict)

    @property
    def energy(self) -> float:
        """Net energy cost of the portfolio's position."""
        return self.consumption - self.production_revenue

    @property
    def total(self) -> float:
        """Energy plus commitment costs."""
        return self.energy + sum(self.commitments.values())


@dataclass
class PortfolioResult:
    """The outcome of ``solvers.portfolio.schedule_portfolio``: read ``status`` first.

    ``sites`` maps each site's name (document order) to its own result, whose
    costs are the site's own terms; ``costs`` holds the market terms and
    ``total`` adds both. ``gap`` is the proven relative optimality gap of a
    decomposed solve (``None``: solved jointly, optimal within the solver's
    tolerances).
    """

    status: Status
    grid: TimeGrid
    sites: dict[str, ScheduleResult]
    costs: PortfolioCosts | None = None
    site_costs: dict[str, float] = field(default_factory=dict)
    net_power: np.ndarray | None = None
    #: The market's marginal price per step (currency per kWh; see ``solvers.portfolio``).
    marginal_price: np.ndarray | None = None
    message: str = ""
    proven_optimal: bool = False
    gap: float | None = None
    lower_bound: float | None = None
    method: str = "joint"
    iterations: int = 0
    solver: str = "highs"
    used_binaries: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every site has a usable schedule."""
        return self.status.usable

    @property
    def total(self) -> float | None:
        """Every site's own costs plus the market terms (None without schedules)."""
        if self.costs is None:
            return None
        return self.costs.total + sum(self.site_costs.values())

    def to_json(self, unit: str = "kW") -> dict[str, Any]:
        """The CLI's JSON object: per-site objects and the portfolio's terms."""
        sites = [{"name": name, **r.to_json(unit)} for name, r in self.sites.items()]
        factor = UNITS[unit][0]
        costs: dict[str, Any] = {"total": None, "currency": None}
        if self.costs is not None:
            c = self.costs
            costs = {
                "total": self.total,
                "currency": c.currency,
                "sites": dict(self.site_costs),
                "market": {
                    "total": c.total,
                    "energy": c.energy,
                    "consumption": c.consumption,
                    "production-revenue": c.production_revenue,
                    "commitments": dict(c.commitments),
                },
            }
        net = [] if self.net_power is None else _clean(self.net_power * factor)
        return {
            "status": str(self.status),
            "start": self.grid.start.isoformat(),
            "resolution": _iso_duration(self.grid.resolution.total_seconds()),
            "unit": unit,
            "sites": sites,
            "net-power": net,
            "costs": costs,
            "optimality-proven": self.proven_optimal,
            "gap": self.gap,
            "lower-bound": self.lower_bound,
            "method": self.method,
            "iterations": self.iterations,
            "solver": self.solver,
            "message": self.message,
            "notes": list(self.notes),
        }
