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

Site limits: ``site-power-capacity`` bounds both directions and is always hard;
``site-consumption-capacity`` and ``site-production-capacity`` are hard unless a
breach price makes them soft (priced per kW of breach per step).

The tie-breaking terms (``prefer-charging-sooner``, earliest process start) are
``1e-6`` of the largest absolute price per kWh at most, so they never outweigh a
real price difference; reported costs are computed from the schedule with the
real prices only.

Several sites toward one market (a VPP) fit this layout: ``add_site`` takes the
builder and a site and returns the site's blocks, so a market-level builder can
add several sites and couple their net powers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from schemas.flex_problem import ProcessDevice, SiteProblem, StorageDevice
from solvers.breaches import add_priced_breach
from solvers.lp import ColumnBlock, LinearProgram
from solvers.process import ProcessVars, add_process
from solvers.storage import BIG_M, StorageVars, add_storage

#: Relative size of the tie-breaking terms, per kWh, against the largest price.
TIE_BREAK = 1e-6


@dataclass
class SiteVars:
    """Everything ``add_site`` created for one site."""

    problem: SiteProblem
    storages: list[StorageVars] = field(default_factory=list)
    processes: list[ProcessVars] = field(default_factory=list)
    consumption: ColumnBlock | None = None
    production: ColumnBlock | None = None
    split: ColumnBlock | None = None

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


def _price_scale(problem: SiteProblem) -> float:
    scale = float(
        np.max(np.abs(np.concatenate([problem.consumption_price, problem.production_price])))
    )
    return scale if scale > 0 else 1.0


def add_site(
    lp: LinearProgram, problem: SiteProblem, complementarity: dict[str, np.ndarray] | None = None
) -> SiteVars:
    """Add one site (its devices, connection and costs) to ``lp``."""
    grid = problem.grid
    n, dt = grid.n, grid.dt_hours
    cp, pp = problem.consumption_price, problem.production_price
    bp = problem.breach_prices
    tie = TIE_BREAK * _price_scale(problem) * dt * (np.arange(n) + 1.0) / n
    site = SiteVars(problem)

    b_rows: list[np.ndarray] = []
    b_cols: list[np.ndarray] = []
    b_vals: list[np.ndarray] = []
    constant = problem.inflexible_power.copy()
    max_cons = np.maximum(problem.inflexible_power, 0.0)
    max_prod = np.maximum(-problem.inflexible_power, 0.0)
    t = np.arange(n)
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
                tie_break=tie,
                binary_steps=(complementarity or {}).get(dev.name),
            )
            site.storages.append(sv)
            b_rows += [t, t]
            b_cols += [sv.charge.index, sv.discharge.index]
            b_vals += [np.ones(n), -np.ones(n)]
            # With priced device breaches a device may reach its power capacity.
            up_c = dev.power_capacity if bp.device_consumption is not None else 0.0
            up_p = dev.power_capacity if bp.device_production is not None else 0.0
            max_cons = max_cons + np.minimum(np.fmax(dev.consumption_capacity, up_c), BIG_M)
            max_prod = max_prod + np.minimum(np.fmax(dev.production_capacity, up_p), BIG_M)
        elif isinstance(dev, ProcessDevice):
            pv, rows, cols, vals, fixed = add_process(lp, dev, cp, tie * dev.power)
            site.processes.append(pv)
            b_rows.append(rows)
            b_cols.append(cols)
            b_vals.append(vals)
            constant = constant + fixed
            max_cons = max_cons + max(dev.power, 0.0)
            max_prod = max_prod + max(-dev.power, 0.0)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown device type {type(dev).__name__}")

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
    for name, flow, cap, price in (
        ("site-consumption-capacity", g_in, problem.site_consumption_capacity,
         bp.site_consumption),
        ("site-production-capacity", g_out, problem.site_production_capacity,
         bp.site_production),
    ):  # fmt: skip
        if price is None:
            lp.add_bounds(f"site.{name}", flow.index, None, cap, constraint=name, **common)
        else:
            add_priced_breach(lp, f"site.{name}", flow.index, cap, price, constraint=name)

    # Where selling pays more than buying, keep g+ and g- apart with a binary.
    steps = np.flatnonzero(pp > cp + 1e-12)
    if len(steps):
        m = len(steps)
        y = lp.add_columns("site.importing", m, 0.0, 1.0, integer=True)
        site.split = y
        mc = np.minimum(max_cons[steps], BIG_M) + 1.0
        mp = np.minimum(max_prod[steps], BIG_M) + 1.0
        r = np.arange(m)
        # g+ - Mc y <= 0 ; g- + Mp y <= Mp
        lp.add_rows(
            "site.import-or-export",
            np.repeat(np.arange(2 * m), 2),
            np.stack(
                [
                    np.concatenate([g_in.start + steps, g_out.start + steps]),
                    np.concatenate([y.start + r, y.start + r]),
                ],
                1,
            ).ravel(),
            np.stack([np.ones(2 * m), np.concatenate([-mc, mp])], 1).ravel(),
            None,
            np.concatenate([np.zeros(m), mp]),
            size=2 * m,
            constraint="import or export",
            steps=np.concatenate([steps, steps]),
            unit="kW",
            elastic=False,
        )
    return site


def build(
    problem: SiteProblem, complementarity: dict[str, np.ndarray] | None = None
) -> Formulation:
    """Build the program for one site.

    ``complementarity`` maps device names to the steps that get a charge/discharge binary.
    """
    lp = LinearProgram()
    site = add_site(lp, problem, complementarity)
    return Formulation(lp, site, dict(complementarity or {}))
