"""An independent dense scipy.optimize.milp model of sites and portfolios, for property tests.

Every storage step gets a charge/discharge binary, every site step and every
portfolio step an import/export binary, every committed step an up/down
binary (no per-instance shortcuts), so the engine's LP-first strategy is
checked as well as its formulation. Written from the semantics in
solvers/README.md, not from the engine's code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

from schemas.flex_problem import Commitment, SiteProblem
from schemas.portfolio import PortfolioProblem
from solvers.storage import decay_factor

#: Bound on any flow without a stated limit (kW).
BIG = 1e5


class DenseModel:
    """Columns and rows collected in Python lists, solved by scipy's HiGHS MILP."""

    def __init__(self) -> None:
        self.cols: list[tuple[float, float, float, int]] = []  # lb, ub, cost, integer
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def add(self, count, lb, ub, cost=0.0, integer=0) -> np.ndarray:
        """Add ``count`` columns; return their indices."""
        start = len(self.cols)
        for i in range(count):
            self.cols.append(
                (
                    np.broadcast_to(lb, count)[i],
                    np.broadcast_to(ub, count)[i],
                    np.broadcast_to(cost, count)[i],
                    integer,
                )
            )
        return np.arange(start, start + count)

    def split(self, n: int, net_terms: list[dict[int, float]], constant, cp, pp, dt, cap=None):
        """``net = g+ - g-`` per step, priced, with an import/export binary; return g+, g-."""
        cap = np.full(n, BIG) if cap is None else np.where(np.isnan(cap), BIG, cap)
        # The binary's big-M is the flow's own bound: a loose one (1e5) lets a binary
        # within the solver's integrality tolerance (1e-6) leak 0.1 kW both ways.
        cap = np.minimum(cap, BIG)
        gc = self.add(n, 0.0, cap, cp * dt)
        gp = self.add(n, 0.0, cap, -pp * dt)
        y = self.add(n, 0.0, 1.0, 0.0, 1)
        for t in range(n):
            row = dict(net_terms[t])
            row[gc[t]] = -1.0
            row[gp[t]] = 1.0
            self.rows.append((row, -constant[t], -constant[t]))
            self.rows.append(({gc[t]: 1.0, y[t]: -cap[t]}, -np.inf, 0.0))
            self.rows.append(({gp[t]: 1.0, y[t]: cap[t]}, -np.inf, cap[t]))
        return gc, gp

    def commitment(self, c: Commitment, gc: np.ndarray, gp: np.ndarray, reach: np.ndarray) -> None:
        """Deviations of ``gc - gp`` (at most ``reach`` either way) from the baseline, priced,
        with an up/down binary."""
        for t in np.flatnonzero(np.isfinite(c.baseline)):
            m = float(min(reach[t] + abs(c.baseline[t]), BIG))
            (u,) = self.add(1, 0.0, m, c.up_price[t])
            (v,) = self.add(1, 0.0, m, -c.down_price[t])
            (z,) = self.add(1, 0.0, 1.0, 0.0, 1)
            self.rows.append(
                ({gc[t]: 1.0, gp[t]: -1.0, u: -1.0, v: 1.0}, c.baseline[t], c.baseline[t])
            )
            self.rows.append(({u: 1.0, z: -m}, -np.inf, 0.0))
            self.rows.append(({v: 1.0, z: m}, -np.inf, m))

    def solve(self) -> float | None:
        """The optimal cost, or None when infeasible."""
        a = np.zeros((len(self.rows), len(self.cols)))
        for i, (row, _, _) in enumerate(self.rows):
            for j, v in row.items():
                a[i, j] += v
        lb, ub, c, integ = (np.array(v, dtype=float) for v in zip(*self.cols, strict=True))
        res = milp(
            c,
            integrality=integ,
            bounds=Bounds(lb, ub),
            constraints=LinearConstraint(a, [r[1] for r in self.rows], [r[2] for r in self.rows]),
            options={"mip_rel_gap": 1e-10},
        )
        if res.status == 2:
            return None
        assert res.status == 0, res.message
        return float(res.fun)


def add_soc_bounds(model: DenseModel, d: Any, soc: np.ndarray, bp: Any) -> None:
    """Hard SOC bounds, and minima, maxima and targets (soft where their breach price is set)."""
    rows = model.rows
    for k in range(1, d.n + 1):
        rows.append(({soc[k]: 1.0}, d.soc_min[k], d.soc_max[k]))
    for k in range(d.n + 1):
        for val, lower in (
            (d.soc_minima[k], True),
            (d.soc_maxima[k], False),
            (d.soc_targets[k], True),
            (d.soc_targets[k], False),
        ):
            if np.isnan(val):
                continue
            price = bp.soc_minima if lower else bp.soc_maxima
            row = {soc[k]: 1.0}
            if price is not None:
                (s,) = model.add(1, 0.0, np.inf, price)
                row[s] = 1.0 if lower else -1.0
            rows.append((row, val, np.inf) if lower else (row, -np.inf, val))


def add_devices(model: DenseModel, problem: SiteProblem) -> list[dict[int, float]]:
    """A site's storage devices; return the terms of the devices' net power per step."""
    n, dt = problem.grid.n, problem.grid.dt_hours
    bp = problem.breach_prices
    net_terms: list[dict[int, float]] = [dict() for _ in range(n)]
    for d in problem.devices:
        cc = np.where(np.isfinite(d.consumption_capacity), d.consumption_capacity, 1e4)
        pc_max = np.where(np.isfinite(d.production_capacity), d.production_capacity, 1e4)
        pc = model.add(n, 0.0, cc)
        pd = model.add(n, 0.0, pc_max)
        soc = model.add(n + 1, -np.inf, np.inf)
        z = model.add(n, 0.0, 1.0, 0.0, 1)
        b = decay_factor(d.storage_efficiency)
        rows = model.rows
        rows.append(({soc[0]: 1.0}, d.soc_at_start, d.soc_at_start))
        for t in range(n):
            drift = b[t] * dt * (d.soc_gain[t] - d.soc_usage[t])
            rows.append(
                (
                    {
                        soc[t + 1]: 1.0,
                        soc[t]: -d.storage_efficiency[t],
                        pc[t]: -b[t] * dt * d.charging_efficiency[t],
                        pd[t]: b[t] * dt / d.discharging_efficiency[t],
                    },
                    drift,
                    drift,
                )
            )
            rows.append(({pc[t]: 1.0, z[t]: -cc[t]}, -np.inf, 0.0))
            rows.append(({pd[t]: 1.0, z[t]: pc_max[t]}, -np.inf, pc_max[t]))
            net_terms[t][pc[t]] = 1.0
            net_terms[t][pd[t]] = -1.0
        add_soc_bounds(model, d, soc, bp)
    return net_terms


def add_site(model: DenseModel, problem: SiteProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One site: its devices and its priced import/export.

    Returns its g+ and g- columns and the most its net power can be either way
    per step (the big-M of its binaries and of the portfolio's).
    """
    n, dt = problem.grid.n, problem.grid.dt_hours
    terms = add_devices(model, problem)
    reach = np.abs(problem.inflexible_power).astype(float)
    for d in problem.devices:
        both = np.fmax(d.consumption_capacity, d.production_capacity)
        reach = reach + np.where(np.isfinite(both), both, 1e4)
    cap = np.fmin(problem.site_power_capacity, reach)  # nan (no limit) gives reach
    gc, gp = model.split(
        n,
        terms,
        problem.inflexible_power,
        problem.consumption_price,
        problem.production_price,
        dt,
        cap,
    )
    return gc, gp, cap


def portfolio_reference_cost(portfolio: PortfolioProblem) -> float | None:
    """Optimal total cost of a portfolio, or None when infeasible.

    Each site as in ``add_site``; the portfolio's net power is the sum of the
    sites' ``g+ - g-``, split again into a priced import and export, and each
    portfolio commitment prices its deviations.
    """
    model = DenseModel()
    n, dt = portfolio.grid.n, portfolio.grid.dt_hours
    terms: list[dict[int, float]] = [dict() for _ in range(n)]
    reach = np.zeros(n)
    for site in portfolio.sites:
        gc, gp, site_reach = add_site(model, site.problem)
        reach = reach + site_reach
        for t in range(n):
            terms[t][gc[t]] = 1.0
            terms[t][gp[t]] = -1.0
    gc, gp = model.split(
        n, terms, np.zeros(n), portfolio.consumption_price, portfolio.production_price, dt, reach
    )
    for c in portfolio.commitments:
        model.commitment(c, gc, gp, reach)
    return model.solve()
