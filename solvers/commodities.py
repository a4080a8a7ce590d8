"""Other commodities than electricity: each its own balance, connection and prices; converters.

Per commodity ``c`` (gas, heat, ...; ``schemas.commodities.CommodityGrid``) and
step ``t``, the devices of ``c`` and its inflexible power make a net flow that
is split into import ``h+[t] >= 0`` and export ``h-[t] >= 0``::

    sum_{d of c} P_d[t] + inflexible_c[t] = h+[t] - h-[t]      (the commodity's balance)
    cost  sum_t dt * (consumption_price_c[t] h+[t] - production_price_c[t] h-[t])

``site-power-capacity`` bounds ``h+`` and ``h-`` (hard); the directional
capacities bound them hard, or soft at their breach price per kW per step and
once on the peak breach (``solvers.breaches``), as the electricity site's. An
internal node (no connection: a heat network) has both capacities at 0, so its
devices balance each other; with a breach price its imbalance is listed as the
breach ``<commodity> balance`` with its cost. Where a production price exceeds
the consumption price a binary per step keeps ``h+`` and ``h-`` apart.

A converter (a ``coupling`` of flex-model entries, one per commodity port)
moves at one flow level ``a[t]`` per step, each port ``d`` at ``P_d[t] = k_d[t] a[t]``
(``k_d > 0`` for an input port, ``< 0`` for an output port). The level is the
first port's ``P_0 / k_0``, so no column is needed: per other port and step::

    P_d[t] - (k_d[t] / k_0[t]) P_0[t] = 0

These rows are hard, and named ``coupling`` (with the converter's name as the
device) in the infeasibility diagnosis. A heat pump is an electricity port with
``k = 1`` and a heat port with ``k = -COP[t]``: each kWh of electricity gives
``COP[t]`` kWh of heat, which the heat balance sends into a buffer (a storage
on heat) or to the heat demand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.commodities import CommodityGrid, Coupling
from solvers.breaches import add_priced_breach
from solvers.lp import ColumnBlock, LinearProgram, add_either_or
from solvers.storage import BIG_M, StorageVars

#: Flows of one commodity: COO triplets (step, column, coefficient) of its devices' powers.
Flows = tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]


@dataclass
class CommodityVars:
    """The import and export columns of one commodity."""

    grid: CommodityGrid
    consumption: ColumnBlock
    production: ColumnBlock


def limits(cg: CommodityGrid) -> list[tuple[str, str, np.ndarray, np.ndarray | None]]:
    """The commodity's directional limits: (constraint name, side, capacity, breach price).

    ``side`` is ``"consumption"`` (import) or ``"production"`` (export). An
    internal node's two limits are its balance.
    """
    c = cg.commodity
    if cg.internal_node:
        name_in = name_out = f"{c} balance"
    else:
        name_in, name_out = f"{c} site-consumption-capacity", f"{c} site-production-capacity"
    return [
        (name_in, "consumption", cg.site_consumption_capacity, cg.consumption_breach_price),
        (name_out, "production", cg.site_production_capacity, cg.production_breach_price),
    ]


def add_commodity(
    lp: LinearProgram, cg: CommodityGrid, flows: Flows, dt: float, max_flow: np.ndarray
) -> CommodityVars:
    """Add one commodity's balance, connection limits and energy cost to ``lp``.

    ``max_flow`` bounds each step's import and export (kW), for the binary's big-M.
    """
    n, c = cg.n, cg.commodity
    t = np.arange(n)
    cp, pp = cg.consumption_price, cg.production_price
    h_in = lp.add_columns(f"{c}.consumption", n, 0.0, np.inf, cp * dt)
    h_out = lp.add_columns(f"{c}.production", n, 0.0, np.inf, -pp * dt)
    rows, cols, vals = (list(part) for part in flows)
    rows += [t, t]
    cols += [h_in.index, h_out.index]
    vals += [-np.ones(n), np.ones(n)]
    lp.add_rows(
        f"{c}.balance",
        np.concatenate(rows),
        np.concatenate(cols),
        np.concatenate(vals),
        -cg.inflexible_power,
        -cg.inflexible_power,
        size=n,
        constraint=f"{c} balance",
        unit="kW",
        elastic=False,
    )
    common = {"steps": t, "unit": "kW"}
    for flow in (h_in, h_out):
        lp.add_bounds(
            f"{flow.name}.power-capacity", flow.index, None, cg.site_power_capacity,
            constraint=f"{c} site-power-capacity", elastic_weight=10.0, **common,
        )  # fmt: skip
    for (name, side, cap, price), flow in zip(limits(cg), (h_in, h_out), strict=True):
        block = f"{c}.site-{side}-capacity"
        if price is None:
            lp.add_bounds(block, flow.index, None, cap, constraint=name, **common)
        else:
            add_priced_breach(lp, block, flow.index, cap, price, constraint=name)
    steps = np.flatnonzero(pp > cp + 1e-12)
    if len(steps):
        big = np.minimum(max_flow[steps], BIG_M) + 1.0
        add_either_or(
            lp, f"{c}.import-or-export", h_in.start + steps, h_out.start + steps, big, big,
            steps, constraint=f"{c} import or export",
        )  # fmt: skip
    return CommodityVars(cg, h_in, h_out)


def add_coupling(
    lp: LinearProgram, coupling: Coupling, storages: dict[str, StorageVars], n: int
) -> None:
    """Tie a converter's ports to the first port's flow level, step by step."""
    t = np.arange(n)
    first = storages[coupling.devices[0]]
    k0 = coupling.coefficients[0]
    for name, coef in zip(coupling.devices[1:], coupling.coefficients[1:], strict=True):
        sv = storages[name]
        ratio = coef / k0
        lp.add_rows(
            f"{coupling.name}.{name}.coupling",
            np.repeat(t, 4),
            np.stack(
                [sv.charge.start + t, sv.discharge.start + t,
                 first.charge.start + t, first.discharge.start + t], 1
            ).ravel(),
            np.stack([np.ones(n), -np.ones(n), -ratio, ratio], 1).ravel(),
            0.0,
            0.0,
            size=n,
            constraint="coupling",
            device=coupling.name,
            unit="kW",
            elastic_weight=10.0,
        )  # fmt: skip


def coupling_mismatch(coupling: Coupling, powers: dict[str, np.ndarray]) -> np.ndarray:
    """Per step, how far (kW) the ports' powers stray from one common flow level.

    The level is read from the first port (``P / k``); each other port is
    compared with ``k`` times it.
    """
    first, k0 = coupling.devices[0], coupling.coefficients[0]
    level = powers[first] / k0
    out = np.zeros(len(level))
    for name, coef in zip(coupling.devices[1:], coupling.coefficients[1:], strict=True):
        out = np.maximum(out, np.abs(powers[name] - coef * level))
    return out


def net_flow(cg: CommodityGrid, devices: list, powers: list[np.ndarray]) -> np.ndarray:
    """The commodity's net import per step (kW): its devices' powers plus its inflexible power."""
    net = cg.inflexible_power.copy()
    for dev, p in zip(devices, powers, strict=True):
        if getattr(dev, "commodity", "electricity") == cg.commodity:
            net = net + p
    return net
