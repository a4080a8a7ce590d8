"""Portfolios (VPP): several sites scheduled jointly toward one market.

The joint program holds every site exactly as ``solvers.formulation.add_site``
builds it alone (devices, connection limits, breach prices, the site's own
prices, peaks and commitments), side by side in one ``LinearProgram``, plus the
market terms on the portfolio's net power ``N[t] = sum_s net_s[t]``::

    sum_s net_s[t] - G+[t] + G-[t] = 0,          G+[t], G-[t] >= 0
    cost  dt * (consumption_price[t] * G+[t] - production_price[t] * G-[t])
          + per portfolio commitment: up[t] * u[t] - down[t] * v[t]
            with G+[t] - G-[t] - u[t] + v[t] = baseline[t]  (solvers.commitments)

``net_s`` is the site's own balance (its devices plus its inflexible power,
``SiteVars.net_terms``). Where the production price exceeds the consumption
price a binary per step keeps ``G+`` and ``G-`` apart, as for a site. Every
market term is priced, so the joint program is feasible exactly when every
site is on its own.

Solving follows ``solvers.engine``: first an LP without charge/discharge
binaries; binaries only at the (site, device, step)s whose optimum overlaps,
then at every step of a device that keeps overlapping; then the tie-breaking
solve over the optimal face (``solvers.backend.solve_on_face``). Each site's
schedule is read back from the joint solution and interpreted by the single
site engine's ``_interpret`` (statuses, costs, breaches, hard checks), so a
site's result means what it means alone. Large portfolios are decomposed
instead (``solvers.portfolio_decomposition``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from schemas.errors import InputError
from schemas.portfolio import PortfolioProblem
from solvers.backend import RawSolution, Termination, get_backend, solve_on_face
from solvers.commitments import add_commitment, commitment_cost
from solvers.engine import _face_tolerance, _integral, _interpret, schedule
from solvers.formulation import Formulation, SiteVars, add_site
from solvers.lp import ColumnBlock, CompiledLP, LinearProgram, add_either_or
from solvers.portfolio_result import PortfolioCosts, PortfolioResult, combine_status
from solvers.result import ScheduleResult, Status
from solvers.storage import BIG_M

#: How ``schedule_portfolio`` may solve.
METHODS = ("auto", "joint", "decomposed")
#: Rounds of binaries at overlapping steps before an overlapping device gets them everywhere.
TARGETED_ROUNDS = 2


@dataclass
class PortfolioFormulation:
    """The joint program and the blocks needed to read it back."""

    lp: LinearProgram
    sites: list[SiteVars]
    consumption: ColumnBlock | None = None
    production: ColumnBlock | None = None
    complementarity: dict[tuple[int, str], np.ndarray] = field(default_factory=dict)


def add_market(
    lp: LinearProgram,
    problem: PortfolioProblem,
    sites: list[SiteVars],
    extra_price: np.ndarray | None = None,
) -> tuple[ColumnBlock | None, ColumnBlock | None]:
    """Add the portfolio's net power split and its market terms; return ``G+``, ``G-``.

    ``extra_price`` (currency per kW per step) is added to both directions' cost:
    the decomposition's price signal. Without any market term nothing is added.
    """
    n, dt = problem.grid.n, problem.grid.dt_hours
    extra = np.zeros(n) if extra_price is None else extra_price
    if not problem.has_market_terms and extra_price is None:
        return None, None
    cp, pp = problem.consumption_price, problem.production_price
    g_in = lp.add_columns("portfolio.consumption", n, 0.0, np.inf, cp * dt + extra)
    g_out = lp.add_columns("portfolio.production", n, 0.0, np.inf, -pp * dt - extra)
    t = np.arange(n)
    rows = [t, t]
    cols = [g_in.index, g_out.index]
    vals = [-np.ones(n), np.ones(n)]
    constant = np.zeros(n)
    for sv in sites:
        r, c, v = sv.net_terms
        rows.append(r)
        cols.append(c)
        vals.append(v)
        constant = constant + sv.net_constant
    lp.add_rows(
        "portfolio.balance",
        np.concatenate(rows),
        np.concatenate(cols),
        np.concatenate(vals),
        -constant,
        -constant,
        size=n,
        constraint="portfolio power balance",
        unit="kW",
        elastic=False,
    )
    bound = np.minimum(sum(sv.flow_bound for sv in sites), BIG_M)
    for k, commitment in enumerate(problem.commitments):
        add_commitment(lp, k, commitment, g_in, g_out, bound)
    steps = np.flatnonzero(pp > cp + 1e-12)
    if len(steps):
        big = bound[steps] + 1.0
        add_either_or(
            lp, "portfolio.import-or-export", g_in.start + steps, g_out.start + steps, big, big,
            steps, constraint="portfolio import or export",
        )  # fmt: skip
    return g_in, g_out


def build_portfolio(
    problem: PortfolioProblem, complementarity: dict[tuple[int, str], np.ndarray] | None = None
) -> PortfolioFormulation:
    """Build the joint program: every site via ``add_site``, then the market terms.

    ``complementarity`` maps (site index, device name) to the steps that get a
    charge/discharge binary.
    """
    compl = dict(complementarity or {})
    lp = LinearProgram()
    sites = []
    for i, site in enumerate(problem.sites):
        own = {name: steps for (j, name), steps in compl.items() if j == i}
        sites.append(add_site(lp, site.problem, own))
    g_in, g_out = add_market(lp, problem, sites)
    return PortfolioFormulation(lp, sites, g_in, g_out, compl)


def _overlaps(form: PortfolioFormulation, x: np.ndarray) -> dict[tuple[int, str], np.ndarray]:
    """Steps where a storage device both charges and discharges, per (site, device)."""
    out = {}
    for i, sv in enumerate(form.sites):
        for s in sv.storages:
            steps = s.overlap_steps(x)
            if len(steps):
                out[(i, s.device.name)] = steps
    return out


def schedule_portfolio(
    problem: PortfolioProblem,
    solver: str = "highs",
    time_limit: float | None = None,
    method: str = "auto",
    gap: float | None = None,
) -> PortfolioResult:
    """Schedule every site of ``problem`` toward its market; see the module docstring.

    ``solver`` and ``time_limit`` (seconds for the whole request) as for
    ``solvers.schedule``. ``method``: ``"joint"`` (one program), ``"decomposed"``
    (groups of sites and a proven gap, ``solvers.portfolio_decomposition``) or
    ``"auto"``: decomposed from ``DECOMPOSE_MIN_SITES`` sites with market terms.
    ``gap``: the relative gap within which a decomposed result counts as optimal
    (default ``solvers.portfolio_decomposition.GAP``, 1e-4).
    """
    from solvers.portfolio_decomposition import DECOMPOSE_MIN_SITES, GAP, schedule_decomposed

    if method not in METHODS:
        raise InputError(f"use one of {', '.join(METHODS)}, not {method!r}", "method")
    large = len(problem.sites) >= DECOMPOSE_MIN_SITES and problem.has_market_terms
    if method == "decomposed" or (method == "auto" and large):
        if gap is not None and not gap >= 0:
            raise InputError("give a relative gap of 0 or more, e.g. 1e-4", "gap")
        return schedule_decomposed(
            problem, solver=solver, time_limit=time_limit, gap=GAP if gap is None else gap
        )
    return _schedule_joint(problem, solver, time_limit)


def _schedule_joint(
    problem: PortfolioProblem, solver: str, time_limit: float | None
) -> PortfolioResult:
    t0 = time.perf_counter()
    backend = get_backend(solver)

    def remaining() -> float | None:
        return None if time_limit is None else time_limit - (time.perf_counter() - t0)

    compl: dict[tuple[int, str], np.ndarray] = {}
    form = build_portfolio(problem)
    clp = form.lp.compile()
    raw = backend.solve(clp, relax_integrality=True, time_limit=remaining())
    prices = _marginal_prices(form, clp, raw, problem.grid.dt_hours)
    relaxed = True
    rounds = 0
    while raw.termination is Termination.OPTIMAL and raw.x is not None:
        rounds += 1
        new = _overlaps(form, raw.x)
        for key, steps in new.items():
            if rounds > TARGETED_ROUNDS:
                compl[key] = np.arange(problem.grid.n)
            else:
                compl[key] = np.union1d(compl.get(key, np.zeros(0, dtype=np.int64)), steps)
        if not new and (not relaxed or _integral(clp, raw.x)):
            break
        form = build_portfolio(problem, compl)
        clp = form.lp.compile()
        relaxed = False
        raw = backend.solve(clp, time_limit=remaining())
    raw = _tie_break(backend, form, clp, raw, relaxed, remaining())
    if raw.x is not None and _overlaps(form, raw.x):
        raw = RawSolution(Termination.TIME_LIMIT, None, None, raw.solve_seconds)
    label = backend.name if solver == "highs" else solver
    result = interpret_portfolio(problem, form, raw, label)
    if raw.termination in (Termination.INFEASIBLE, Termination.UNBOUNDED):
        result = _explain_failure(problem, result, solver, remaining())
    result.method = "joint"
    result.marginal_price = prices
    result.notes = list(problem.notes)
    result.used_binaries = not relaxed
    result.timings = {"total": time.perf_counter() - t0}
    return result


def _marginal_prices(
    form: PortfolioFormulation, clp: CompiledLP, raw: RawSolution, dt: float
) -> np.ndarray | None:
    """The market's marginal price per step (currency per kWh) at the first LP optimum.

    The dual of the portfolio's balance row, read from the HiGHS instance (None
    for another back end, or without market terms). After a MILP it is the LP
    relaxation's price.
    """
    handle = raw.handle
    if form.consumption is None or raw.termination is not Termination.OPTIMAL:
        return None
    if not (isinstance(handle, tuple) and hasattr(handle[0], "getSolution")):
        return None
    rows = next((r0, r1) for name, r0, r1 in clp.row_block_slices if name == "portfolio.balance")
    dual = np.asarray(handle[0].getSolution().row_dual, dtype=float)[rows[0] : rows[1]]
    return -dual / dt


def _tie_break(
    backend: object,
    form: PortfolioFormulation,
    clp: CompiledLP,
    raw: RawSolution,
    relaxed: bool,
    time_limit: float | None,
) -> RawSolution:
    """The secondary objective over the optimal face, kept only if it stays valid."""
    if raw.termination is not Termination.OPTIMAL or raw.x is None or not clp.has_secondary:
        return raw
    face_lp = clp if relaxed else clp.with_integers_fixed(raw.x)
    tol = _face_tolerance(raw.objective)
    second = solve_on_face(
        backend, face_lp, raw, tol, relax_integrality=True, time_limit=time_limit
    )
    ok = (
        second.termination is Termination.OPTIMAL
        and second.x is not None
        and (not relaxed or _integral(clp, second.x))
        and not _overlaps(form, second.x)
    )
    if not ok:
        return raw
    return RawSolution(raw.termination, second.x, raw.objective, raw.solve_seconds, raw.mip_gap)


def interpret_portfolio(
    problem: PortfolioProblem, form: PortfolioFormulation, raw: RawSolution, solver: str
) -> PortfolioResult:
    """Each site's result from the joint solution, and the portfolio's terms and status."""
    sites = {}
    for site, sv in zip(problem.sites, form.sites, strict=True):
        sites[site.name] = _interpret(site.problem, Formulation(form.lp, sv, {}), raw, solver)
    return finish(problem, sites, raw, solver)


def finish(
    problem: PortfolioProblem,
    sites: dict[str, ScheduleResult],
    raw: RawSolution,
    solver: str,
) -> PortfolioResult:
    """Portfolio costs and status from the sites' results (all usable or not)."""
    result = PortfolioResult(Status.UNKNOWN, problem.grid, sites, solver=solver)
    result.status = combine_status([r.status for r in sites.values()])
    if all(r.schedules for r in sites.values()):
        net = np.sum(
            [
                np.sum([s.power for s in r.schedules], axis=0) + sp.problem.inflexible_power
                if r.schedules
                else sp.problem.inflexible_power
                for sp, r in zip(problem.sites, sites.values(), strict=True)
            ],
            axis=0,
        )
        result.net_power = net
        result.costs = market_costs(problem, net)
        result.site_costs = {name: r.costs.total for name, r in sites.items() if r.costs}
    result.proven_optimal = raw.termination is Termination.OPTIMAL and all(
        r.proven_optimal for r in sites.values()
    )
    result.message = _message(result)
    return result


def market_costs(problem: PortfolioProblem, net: np.ndarray) -> PortfolioCosts:
    """The market terms for the portfolio's net power ``net`` (kW per step)."""
    dt = problem.grid.dt_hours
    return PortfolioCosts(
        currency=problem.currency,
        consumption=float(np.sum(problem.consumption_price * np.maximum(net, 0.0) * dt)),
        production_revenue=float(np.sum(problem.production_price * np.maximum(-net, 0.0) * dt)),
        commitments={c.name: commitment_cost(net, c) for c in problem.commitments},
    )


def _message(result: PortfolioResult) -> str:
    """The portfolio's message: its status, and every site that is not optimal by name."""
    others = [
        f"site {name!r}: {r.message}"
        for name, r in result.sites.items()
        if r.status is not Status.OPTIMAL
    ]
    more = f" and {len(others) - 5} more" if len(others) > 5 else ""
    return "; ".join([str(result.status), *others[:5]]) + more


def _explain_failure(
    problem: PortfolioProblem, result: PortfolioResult, solver: str, time_limit: float | None
) -> PortfolioResult:
    """Name the sites that make the portfolio infeasible (or unbounded).

    Every market term is priced, so the joint program is infeasible (unbounded)
    only if some site is on its own: each site is scheduled alone, and the
    failing ones carry their own conflicts, named by the single-site engine's
    elastic diagnosis.
    """
    failing = {}
    for site in problem.sites:
        alone = schedule(site.problem, solver=solver, time_limit=time_limit)
        if alone.status in (Status.INFEASIBLE, Status.UNBOUNDED):
            failing[site.name] = alone
    for name, r in result.sites.items():
        if name in failing:
            result.sites[name] = failing[name]
        else:
            r.message = f"not scheduled: the portfolio's sites {list(failing)} cannot be met"
    names = ", ".join(repr(n) for n in failing) or "none on its own"
    result.message = f"{result.status}: failing sites: {names}; " + "; ".join(
        f"site {name!r}: {r.message}" for name, r in list(failing.items())[:5]
    )
    return result
