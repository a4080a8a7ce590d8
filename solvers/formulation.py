"""The site formulation: devices, the site's grid connection, prices and breaches.

Per step ``t`` the site's net power is the sum of every scheduled device's net
power plus the inflexible consumption minus the inflexible production. It is
split into consumption ``g+[t] >= 0`` and production ``g-[t] >= 0`` with
``g+ - g- = net``; the objective is::

    sum_t dt * (consumption_price[t] * g+[t] - production_price[t] * g-[t])
        + breach costs + tie-breaking terms

so energy a battery stores from a PV surplus is worth the consumption price it
later avoids. Where ``production_price[t] <= consumption_price[t]`` the split
is exact in an LP (a simultaneous ``g+`` and ``g-`` cannot lower the cost);
at steps where the production price is higher, a binary per step keeps the two
apart.

A site without any connection limit and with equal prices both ways has no
site columns at all: its cost is ``dt * price[t] * net[t]``, linear in the
devices' powers, so the price is put on their columns directly (the same
optimum, a model half the size for one device).

Site limits: ``site-power-capacity`` bounds both directions and is always hard;
``site-consumption-capacity`` and ``site-production-capacity`` are hard unless a
breach price makes them soft (priced per kW of breach per step). Peak prices
charge a new peak of ``g+`` (or ``g-``) above the peak already reached, once per
kW (``solvers.peaks``); commitments price the net power's deviations from a
committed position per step (``solvers.commitments``). Device groups limit
their members' summed power (``solvers.groups``) and operation modes confine a
storage device's net power to its bands (``solvers.modes``).

Ties are broken lexicographically, not by tiny costs: the objective above is
the primary one and nothing else is in it. ``add_site`` also sets a secondary,
tie-breaking objective (``LinearProgram.add_cost(..., secondary=True)``), which
the engine minimises in a second solve over the primary's optimal face (see
``solvers.engine``). Per storage device and step ``t`` (``f = (t + 1/2) / n``)::

    dt * (P+[t] + P-[t])                                    throughput, 1 per kWh
    + dt * TIMING * (f P+[t] + (1 - f) P-[t])               prefer-charging-sooner
    (or dt * TIMING * ((1 - f) P+[t] + f P-[t]) when false: charge late, discharge early)

and per process the start (or, for BREAKABLE, each step) costs
``TIMING * |energy| * f``, so the earliest of equal-cost placements wins.
``TIMING = 0.5`` keeps the timing terms below the throughput term: every kWh
charged and discharged costs at least 1 more, and moving a kWh in time saves at
most 0.5, so no device cycles to be "fuller sooner". The smallest difference
the solver must see is ``TIMING * dt / n`` per kW, e.g. 2.6e-3 per kWh at 192
steps and 5.7e-5 at 8760, far above HiGHS's optimality tolerance (1e-7),
whatever the prices. Reported costs are computed from the schedule with the
real prices only.

Other commodities than electricity (gas, heat) have their own balance,
connection and prices, and converters tie ports of several commodities
together (``solvers.commodities``); only electricity devices enter the site's
balance above, its peak prices and its commitments.

Several sites toward one market (a VPP) fit this layout: ``add_site`` takes the
builder and a site and returns the site's blocks, so a market-level builder can
add several sites and couple their net powers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from schemas.flex_problem import ProcessDevice, SiteProblem, StorageDevice
from solvers.breaches import add_priced_breach
from solvers.commitments import add_commitment
from solvers.commodities import CommodityVars, add_commodity, add_coupling
from solvers.groups import add_groups
from solvers.lp import ColumnBlock, LinearProgram, add_either_or
from solvers.modes import add_modes
from solvers.peaks import add_peak
from solvers.process import ProcessVars, add_process
from solvers.storage import BIG_M, TIMING, StorageVars, add_storage


@dataclass
class SiteVars:
    """Everything ``add_site`` created for one site."""

    problem: SiteProblem
    storages: list[StorageVars] = field(default_factory=list)
    processes: list[ProcessVars] = field(default_factory=list)
    consumption: ColumnBlock | None = None
    production: ColumnBlock | None = None
    split: ColumnBlock | None = None
    commodities: list[CommodityVars] = field(default_factory=list)
    #: The site's net power per step (kW): COO triplets (step, column, coefficient) over
    #: the device columns plus a constant profile, for a market-level builder to couple.
    net_terms: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    net_constant: np.ndarray | None = None
    #: A bound on the site's net power in either direction per step (kW).
    flow_bound: np.ndarray | None = None

    def device_power(self, x: np.ndarray) -> list[np.ndarray]:
        """Net power per device (kW, input order) from a solution vector."""
        by_name = {s.device.name: s.net_power(x) for s in self.storages}
        by_name.update({p.device.name: p.power(x) for p in self.processes})
        return [by_name[d.name] for d in self.problem.devices]


@dataclass
class Formulation:
    """A built program and the blocks needed to read a solution back."""

    lp: LinearProgram
    site: SiteVars
    complementarity: dict[str, np.ndarray]


def add_site(
    lp: LinearProgram, problem: SiteProblem, complementarity: dict[str, np.ndarray] | None = None
) -> SiteVars:
    """Add one site (its devices, connection and costs) to ``lp``."""
    grid = problem.grid
    n, dt = grid.n, grid.dt_hours
    cp, pp = problem.consumption_price, problem.production_price
    bp = problem.breach_prices
    # Fraction of the window at each step's middle: the timing preferences' slope.
    frac = (np.arange(n) + 0.5) / n
    site = SiteVars(problem)

    b_rows: list[np.ndarray] = []
    b_cols: list[np.ndarray] = []
    b_vals: list[np.ndarray] = []
    constant = problem.inflexible_power.copy()
    max_cons = np.maximum(problem.inflexible_power, 0.0)
    max_prod = np.maximum(-problem.inflexible_power, 0.0)
    t = np.arange(n)
    # Devices of other commodities: their flows and largest imports/exports, per commodity.
    other: dict[str, tuple[list, list, list]] = {
        c.commodity: ([], [], []) for c in problem.commodities
    }
    other_max = {c.commodity: np.abs(c.inflexible_power) for c in problem.commodities}
    terms: dict[str, tuple[np.ndarray, ...]] = {}  # each device's part of a power sum
    for dev in problem.devices:
        if isinstance(dev, StorageDevice):
            sv = add_storage(
                lp,
                dev,
                dt,
                soc_minima_price=bp.soc_minima,
                soc_maxima_price=bp.soc_maxima,
                consumption_breach_price=bp.device_consumption,
                production_breach_price=bp.device_production,
                timing=frac,
                binary_steps=(complementarity or {}).get(dev.name),
            )
            site.storages.append(sv)
            # With priced device breaches a device may reach its power capacity.
            up_c = dev.power_capacity if bp.device_consumption is not None else 0.0
            up_p = dev.power_capacity if bp.device_production is not None else 0.0
            reach_c = np.fmax(dev.consumption_capacity, up_c)
            reach_p = np.fmax(dev.production_capacity, up_p)
            if dev.operation_modes:
                add_modes(lp, dev, sv, reach_c, reach_p)
            if dev.commodity != "electricity":
                rows, cols, vals = other[dev.commodity]
                rows += [t, t]
                cols += [sv.charge.index, sv.discharge.index]
                vals += [np.ones(n), -np.ones(n)]
                reach = np.minimum(np.maximum(reach_c, reach_p), BIG_M)
                other_max[dev.commodity] = other_max[dev.commodity] + reach
                continue
            b_rows += [t, t]
            b_cols += [sv.charge.index, sv.discharge.index]
            b_vals += [np.ones(n), -np.ones(n)]
            rows, cols, vals = (np.concatenate(b[-2:]) for b in (b_rows, b_cols, b_vals))
            terms[dev.name] = (rows, cols, vals, np.zeros(n))
            max_cons = max_cons + np.minimum(reach_c, BIG_M)
            max_prod = max_prod + np.minimum(reach_p, BIG_M)
        elif isinstance(dev, ProcessDevice):
            timing = TIMING * abs(dev.power) * dt * frac
            pv, rows, cols, vals, fixed = add_process(lp, dev, cp, timing)
            site.processes.append(pv)
            b_rows.append(rows)
            b_cols.append(cols)
            b_vals.append(vals)
            terms[dev.name] = (rows, cols, vals, fixed)
            constant = constant + fixed
            max_cons = max_cons + max(dev.power, 0.0)
            max_prod = max_prod + max(-dev.power, 0.0)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown device type {type(dev).__name__}")
    for cg in problem.commodities:
        site.commodities.append(
            add_commodity(lp, cg, other[cg.commodity], dt, other_max[cg.commodity])
        )
    by_name = {sv.device.name: sv for sv in site.storages}
    for coupling in problem.couplings:
        add_coupling(lp, coupling, by_name, n)

    add_groups(lp, problem, terms)
    empty = np.zeros(0, dtype=np.int64)
    site.net_terms = tuple(np.concatenate([empty, *parts]) for parts in (b_rows, b_cols, b_vals))
    site.net_constant = constant
    bound = np.minimum(np.maximum(max_cons, max_prod), BIG_M)
    site.flow_bound = bound
    if _price_only(problem):
        # No limit at the connection and one price both ways: the site's cost is the
        # price times its net power, so the price goes straight onto the devices'
        # columns (the inflexible part is a constant) and the site needs no columns.
        if b_rows:
            rows, cols = np.concatenate(b_rows), np.concatenate(b_cols)
            lp.add_cost_at(cols, np.concatenate(b_vals) * cp[rows] * dt)
        return site

    g_in = lp.add_columns("site.consumption", n, 0.0, np.inf, cp * dt)
    g_out = lp.add_columns("site.production", n, 0.0, np.inf, -pp * dt)
    site.consumption, site.production = g_in, g_out
    # Balance: sum(devices) - g+ + g- = -constant.
    b_rows += [t, t]
    b_cols += [g_in.index, g_out.index]
    b_vals += [-np.ones(n), np.ones(n)]
    lp.add_rows(
        "site.balance",
        np.concatenate(b_rows),
        np.concatenate(b_cols),
        np.concatenate(b_vals),
        -constant,
        -constant,
        size=n,
        constraint="site power balance",
        unit="kW",
        elastic=False,
    )

    common = {"steps": t, "unit": "kW"}
    cap = problem.site_power_capacity
    lp.add_bounds(
        "site.power-capacity.consumption", g_in.index, None, cap,
        constraint="site-power-capacity", elastic_weight=10.0, **common,
    )  # fmt: skip
    lp.add_bounds(
        "site.power-capacity.production", g_out.index, None, cap,
        constraint="site-power-capacity", elastic_weight=10.0, **common,
    )  # fmt: skip
    hard = np.where(np.isnan(cap), np.inf, cap)
    for name, flow, cap, price, reach in (
        ("site-consumption-capacity", g_in, problem.site_consumption_capacity,
         bp.site_consumption, max_cons),
        ("site-production-capacity", g_out, problem.site_production_capacity,
         bp.site_production, max_prod),
    ):  # fmt: skip
        if price is None:
            lp.add_bounds(f"site.{name}", flow.index, None, cap, constraint=name, **common)
        else:
            # No breach column where no schedule can breach: the capacity is at or above
            # the hard connection limit or the most the site's devices can take or give
            # (with the default soft capacity, which equals the connection, none at all).
            moot = cap >= np.fmin(hard, reach)
            soft = np.where(moot, np.inf, cap)
            add_priced_breach(lp, f"site.{name}", flow.index, soft, price, constraint=name)

    add_peak(
        lp, "site.peak-consumption", g_in.index, problem.peak_consumption,
        _priced(problem.peak_consumption_price, n), constraint="site-peak-consumption",
    )  # fmt: skip
    add_peak(
        lp, "site.peak-production", g_out.index, problem.peak_production,
        _priced(problem.peak_production_price, n), constraint="site-peak-production",
    )  # fmt: skip

    for k, commitment in enumerate(problem.commitments):
        add_commitment(lp, k, commitment, g_in, g_out, bound)

    # Where selling pays more than buying, keep g+ and g- apart with a binary.
    steps = np.flatnonzero(pp > cp + 1e-12)
    if len(steps):
        mc = np.minimum(max_cons[steps], BIG_M) + 1.0
        mp = np.minimum(max_prod[steps], BIG_M) + 1.0
        # g+ - Mc y <= 0 ; g- + Mp y <= Mp
        site.split = add_either_or(
            lp, "site.import-or-export", g_in.start + steps, g_out.start + steps, mc, mp,
            steps, constraint="import or export",
        )  # fmt: skip
    return site


def _priced(price: np.ndarray | None, n: int) -> np.ndarray:
    """A peak price per step (``nan``: none)."""
    return np.full(n, np.nan) if price is None else price


def _price_only(problem: SiteProblem) -> bool:
    """Whether the site is only a price: no capacity, no peak price, equal prices both ways."""
    if problem.peak_consumption_price is not None or problem.peak_production_price is not None:
        return False
    if problem.commitments:
        return False
    caps = (
        problem.site_power_capacity,
        problem.site_consumption_capacity,
        problem.site_production_capacity,
    )
    no_limits = all(np.all(np.isnan(np.asarray(c, dtype=float))) for c in caps)
    return no_limits and bool(np.all(problem.production_price == problem.consumption_price))


def build(
    problem: SiteProblem, complementarity: dict[str, np.ndarray] | None = None
) -> Formulation:
    """Build the program for one site.

    ``complementarity`` maps device names to the steps that get a charge/discharge binary.
    """
    lp = LinearProgram()
    site = add_site(lp, problem, complementarity)
    return Formulation(lp, site, dict(complementarity or {}))
