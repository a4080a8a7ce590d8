"""Schedules for the output sensors a flex-model or flex-context names, as FlexMeasures fills them.

Besides a device's own power sensor (and its ``state-of-charge`` sensor), a
request may name sensors to receive parts of the schedule:

- a device's or group's ``consumption`` and ``production``, over its net
  power ``p``;
- per commodity, the flex-context's ``aggregate-consumption`` and
  ``aggregate-production``, over the net power of the commodity's devices
  plus its inflexible consumption minus production; electricity's deprecated
  ``aggregate-power`` gets that whole net.

With only one of a pair named, it gets the whole net power; with both, the
consumption sensor gets ``max(p, 0)`` and the production sensor ``min(p, 0)``
(FlexStream's sensors are consumption-positive, so production stays negative).

Pure: the worker publishes these as extra schedule records (sensor set to the
output sensor) next to the devices' own, and the ingest role stores them like
any schedule.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from schemas.flex_problem import SiteProblem
from solvers.result import ScheduleResult


def _name(ref: Any) -> str | None:
    """The sensor name of an output reference (``{"sensor": name}``, or an id as text)."""
    if isinstance(ref, dict):
        ref = ref.get("sensor")
    return None if ref is None else str(ref)


def _split(
    outputs: dict[str, Any], net: np.ndarray, keys: tuple[str, str]
) -> list[tuple[str, np.ndarray]]:
    """``(sensor, values)`` for a consumption/production pair of output fields over ``net``."""
    cons, prod = (_name(outputs.get(k)) for k in keys)
    if cons and prod:
        return [(cons, np.maximum(net, 0.0)), (prod, np.minimum(net, 0.0))]
    return [(s, net) for s in (cons, prod) if s]


def output_series(problem: SiteProblem, result: ScheduleResult) -> list[tuple[str, np.ndarray]]:
    """Every named output sensor with its values (kW per step); empty without a schedule."""
    if not result.ok:
        return []
    power = {s.sensor: s.power for s in result.schedules}
    out: list[tuple[str, np.ndarray]] = []
    for owner in [*problem.devices, *problem.groups]:
        p = power.get(owner.name)
        if p is not None:
            out += _split(getattr(owner, "outputs", None) or {}, p, ("consumption", "production"))
    n = problem.grid.n
    contexts = [("electricity", problem.outputs, problem.inflexible_power)]
    contexts += [(c.commodity, c.outputs, c.inflexible_power) for c in problem.commodities]
    for commodity, outputs, inflexible in contexts:
        if not outputs:
            continue
        members = [
            power[d.name]
            for d in problem.devices
            if getattr(d, "commodity", "electricity") == commodity and d.name in power
        ]
        net = np.sum(members, axis=0) if members else np.zeros(n)
        net = net + np.asarray(inflexible, dtype=float)
        aggregate = _name(outputs.get("aggregate-power"))
        if aggregate:
            out.append((aggregate, net))
        out += _split(outputs, net, ("aggregate-consumption", "aggregate-production"))
    return out
