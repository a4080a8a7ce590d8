"""Device groups: an intermediate power limit over several devices (FlexMeasures' ``group``).

A group (e.g. a hybrid inverter shared by a battery and PV on its AC side)
limits the summed power of its members. Per group and step ``t``, with ``net[t]``
the members' scheduled powers plus the inflexible members' fixed power, the
formulation adds consumption ``h+[t] >= 0`` and production ``h-[t] >= 0`` columns
and::

    sum_members P[t] - h+[t] + h-[t] = -inflexible[t]      (group power balance)
    h+[t] <= power_capacity[t],  h-[t] <= power_capacity[t]  (hard)
    h+[t] <= consumption_capacity[t]                         (soft where priced)
    h-[t] <= production_capacity[t]                          (soft where priced)

Priced directional capacities go through ``solvers.breaches`` (per-step and
peak breach costs, as the site's capacities). The split into ``h+`` and ``h-``
is exact without a binary: neither column has a cost except through breaches,
which only grow when both are positive at once. Constraint names in breaches and
conflicts are ``group-power-capacity``, ``group-consumption-capacity`` and
``group-production-capacity``, with the group's name as the device.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from schemas.flex_problem import DeviceGroup, SiteProblem
from solvers.breaches import add_priced_breach, capacity_breaches
from solvers.lp import LinearProgram
from solvers.result import Breach, DeviceSchedule

#: Per device name: its part of a power sum as COO triplets (step, column, kW per unit)
#: and a constant kW profile.
Terms = Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]


def add_group(lp: LinearProgram, group: DeviceGroup, terms: Terms) -> None:
    """Add one group's balance and limits to ``lp`` (see the module docstring)."""
    n, name = group.n, group.name
    t = np.arange(n)
    parts = [terms[m] for m in group.members]
    constant = group.inflexible_power + sum((p[3] for p in parts), np.zeros(n))
    h_in = lp.add_columns(f"group.{name}.consumption", n, 0.0, np.inf)
    h_out = lp.add_columns(f"group.{name}.production", n, 0.0, np.inf)
    lp.add_rows(
        f"group.{name}.balance",
        np.concatenate([*(p[0] for p in parts), t, t]),
        np.concatenate([*(p[1] for p in parts), h_in.index, h_out.index]),
        np.concatenate([*(p[2] for p in parts), -np.ones(n), np.ones(n)]),
        -constant,
        -constant,
        size=n,
        constraint="group power balance",
        device=name,
        unit="kW",
        elastic=False,
    )
    common = {"device": name, "steps": t, "unit": "kW"}
    for side, flow in (("consumption", h_in), ("production", h_out)):
        lp.add_bounds(
            f"group.{name}.power-capacity.{side}", flow.index, None, group.power_capacity,
            constraint="group-power-capacity", elastic_weight=10.0, **common,
        )  # fmt: skip
        cap = getattr(group, f"{side}_capacity")
        price = getattr(group, f"{side}_breach_price")
        constraint = f"group-{side}-capacity"
        if price is None:
            lp.add_bounds(
                f"group.{name}.{side}-capacity", flow.index, None, cap,
                constraint=constraint, **common,
            )  # fmt: skip
        else:
            add_priced_breach(
                lp, f"group.{name}.{side}-capacity", flow.index, cap, price,
                constraint=constraint, device=name,
            )  # fmt: skip


def add_groups(lp: LinearProgram, problem: SiteProblem, terms: Terms) -> None:
    """Add every group of ``problem`` to ``lp``."""
    for group in problem.groups:
        add_group(lp, group, terms)


def group_schedules(problem: SiteProblem, powers: Mapping[str, np.ndarray]) -> list[DeviceSchedule]:
    """Each group's net power (kW per step): its members' powers plus its inflexible power."""
    out = []
    for group in problem.groups:
        net = group.inflexible_power + sum((powers[m] for m in group.members), np.zeros(group.n))
        out.append(DeviceSchedule(group.name, "group", net))
    return out


def _excess(flow: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """How far ``flow`` exceeds ``cap`` per step (0 where ``cap`` is nan or inf)."""
    return np.maximum(flow - np.where(np.isnan(cap), np.inf, cap), 0.0)


def group_breaches(
    problem: SiteProblem, schedules: Iterable[DeviceSchedule], tol: float
) -> Iterable[Breach]:
    """Priced breaches of groups' consumption and production capacities, with their peaks."""
    for group, s in zip(problem.groups, schedules, strict=True):
        flows = {"consumption": np.maximum(s.power, 0.0), "production": np.maximum(-s.power, 0.0)}
        for side, flow in flows.items():
            price = getattr(group, f"{side}_breach_price")
            if price is not None:
                cap = getattr(group, f"{side}_capacity")
                name = f"group-{side}-capacity"
                yield from capacity_breaches(problem.grid, name, group.name, flow, cap, price, tol)


def group_violations(
    problem: SiteProblem, schedules: Iterable[DeviceSchedule], tol: float
) -> Iterable[Breach]:
    """Hard group limits the schedule breaks by more than ``tol``."""
    grid = problem.grid
    for group, s in zip(problem.groups, schedules, strict=True):
        cons, prod = np.maximum(s.power, 0.0), np.maximum(-s.power, 0.0)
        checks = [
            ("group-power-capacity", cons, group.power_capacity),
            ("group-power-capacity", prod, group.power_capacity),
        ]
        if group.consumption_breach_price is None:
            checks.append(("group-consumption-capacity", cons, group.consumption_capacity))
        if group.production_breach_price is None:
            checks.append(("group-production-capacity", prod, group.production_capacity))
        for name, flow, cap in checks:
            amount = _excess(flow, cap)
            for t in np.flatnonzero(amount > tol):
                yield Breach(name, group.name, grid.step_start(int(t)), float(amount[t]), "kW")
