"""What a schedule request returns: a status, schedules, costs, breaches, conflicts.

``ScheduleResult.to_json(unit)`` is the ``flexstream schedule`` command's JSON;
``ScheduleResult.to_schedules(context)`` the schedules topic's ``Schedule`` records.
Powers are kW and energies kWh inside; ``to_json("MW")`` reports MW and MWh.
``Status`` is defined with the ``Schedule`` record in ``schemas.schedule``; the
solver gives all of its statuses but ``invalid`` and ``error`` (the scheduler's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from schemas.errors import InputError
from schemas.flex_problem import TimeGrid
from schemas.schedule import Schedule, ScheduleRequestContext, Status

#: Factor from kW (kWh) to the reporting unit, and the matching energy unit.
UNITS = {"kW": (1.0, "kWh"), "MW": (1e-3, "MWh")}


@dataclass
class Breach:
    """A soft constraint given up (``relaxed``) or a constraint in conflict (``infeasible``).

    ``amount`` is in ``unit`` (kW or kWh). ``price`` and ``cost`` are ``None`` for
    conflicts, which have no price.
    """

    constraint: str
    device: str | None
    datetime: datetime
    amount: float
    unit: str
    price: float | None = None
    cost: float | None = None

    def to_json(self, factor: float, energy_unit: str, power_unit: str) -> dict[str, Any]:
        """JSON object with amounts in the reporting unit."""
        unit = energy_unit if self.unit == "kWh" else power_unit
        out: dict[str, Any] = {
            "constraint": self.constraint,
            "device": self.device,
            "datetime": self.datetime.isoformat(),
            "amount": self.amount * factor,
            "unit": unit,
        }
        if self.cost is not None:
            out["cost"] = self.cost
        return out


@dataclass
class DeviceSchedule:
    """One device's net power per step (kW) and, for storage, SOC per boundary (kWh).

    A converter's port without a state of charge has ``soc`` None.
    """

    sensor: str
    kind: str
    power: np.ndarray
    soc: np.ndarray | None = None


@dataclass
class CommodityCost:
    """What one commodity's import costs and its export earns, in the request's currency."""

    consumption: float = 0.0
    production_revenue: float = 0.0

    @property
    def energy(self) -> float:
        """Net energy cost of the commodity."""
        return self.consumption - self.production_revenue


@dataclass
class Costs:
    """Costs in ``currency``: energy bought minus sold, plus peak, commitment and breach costs.

    ``consumption`` and ``production_revenue`` sum every commodity's;
    ``commodities`` breaks them down by commodity (electricity first).
    """

    currency: str
    consumption: float = 0.0
    production_revenue: float = 0.0
    breaches: float = 0.0
    #: Charges for new consumption and production peaks (peak pricing).
    peak_consumption: float = 0.0
    peak_production: float = 0.0
    #: What deviating from each commitment costs, by commitment name.
    commitments: dict[str, float] = field(default_factory=dict)
    commodities: dict[str, CommodityCost] = field(default_factory=dict)

    @property
    def energy(self) -> float:
        """Net energy cost."""
        return self.consumption - self.production_revenue

    @property
    def total(self) -> float:
        """Energy cost plus peak charges plus breach costs."""
        peaks = self.peak_consumption + self.peak_production
        return self.energy + peaks + sum(self.commitments.values()) + self.breaches


@dataclass
class ScheduleResult:
    """The outcome of ``solvers.schedule``: read ``status`` before anything else."""

    status: Status
    grid: TimeGrid
    schedules: list[DeviceSchedule] = field(default_factory=list)
    costs: Costs | None = None
    breaches: list[Breach] = field(default_factory=list)
    conflicts: list[Breach] = field(default_factory=list)
    message: str = ""
    proven_optimal: bool = False
    solver: str = "highs"
    used_binaries: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether a schedule proven optimal (possibly with priced breaches) is returned."""
        return self.status.usable

    def schedule_of(self, sensor: str) -> DeviceSchedule:
        """The schedule of one device by its sensor name."""
        for s in self.schedules:
            if s.sensor == sensor:
                return s
        raise KeyError(sensor)

    def _costs_json(self) -> dict[str, Any]:
        """The costs as the JSON object of both contracts (total and currency null without)."""
        if self.costs is None:
            return {"total": None, "currency": None}
        c = self.costs
        return {
            "total": c.total,
            "currency": c.currency,
            "energy": c.energy,
            "consumption": c.consumption,
            "production-revenue": c.production_revenue,
            "peak-consumption": c.peak_consumption,
            "peak-production": c.peak_production,
            "commitments": dict(c.commitments),
            "breaches": c.breaches,
            "commodities": {
                name: {
                    "energy": cc.energy,
                    "consumption": cc.consumption,
                    "production-revenue": cc.production_revenue,
                }
                for name, cc in c.commodities.items()
            },
        }

    def _breaches_json(self, unit: str) -> list[dict[str, Any]]:
        """The breaches (the conflicts when infeasible) with amounts in ``unit``."""
        factor, energy_unit = UNITS[unit]
        listed = self.breaches if self.status is not Status.INFEASIBLE else self.conflicts
        return [b.to_json(factor, energy_unit, unit) for b in listed]

    def to_schedules(
        self, context: ScheduleRequestContext, solver_time_ms: float = 0.0
    ) -> list[Schedule]:
        """One ``Schedule`` per device of ``context`` (kW, kWh), in its order.

        Every record carries the status, message, request costs and breaches; the
        power and SOC only when the status is usable and the device was scheduled.
        """
        costs = self._costs_json()
        common: dict[str, Any] = {
            "message": self.message or "",
            "unit": "kW",
            "soc_unit": "kWh",
            "costs_total": costs["total"],
            "currency": costs["currency"] or "",
            "costs": costs,
            "breaches": self._breaches_json("kW"),
            "solver_time_ms": solver_time_ms,
        }
        by_sensor = {s.sensor: s for s in self.schedules} if self.ok else {}
        out = []
        for device in context.devices:
            s = by_sensor.get(device)
            values = [float(v) for v in s.power] if s is not None else []
            soc = [float(v) for v in s.soc] if s is not None and s.soc is not None else []
            out.append(
                context.schedule(device, self.status, values=values, state_of_charge=soc, **common)
            )
        return out

    def to_json(self, unit: str = "kW") -> dict[str, Any]:
        """The CLI contract's JSON object, with powers in ``unit`` (kW or MW)."""
        if unit not in UNITS:
            raise InputError(f"unit must be one of {sorted(UNITS)}, got {unit!r}", "unit")
        factor, energy_unit = UNITS[unit]
        schedules = []
        for s in self.schedules:
            item: dict[str, Any] = {"sensor": s.sensor, "values": _clean(s.power * factor)}
            if s.soc is not None:
                item["state-of-charge"] = _clean(s.soc * factor)
                item["state-of-charge-unit"] = energy_unit
            schedules.append(item)
        return {
            "status": str(self.status),
            "start": self.grid.start.isoformat(),
            "resolution": _iso_duration(self.grid.resolution.total_seconds()),
            "unit": unit,
            "schedules": schedules,
            "costs": self._costs_json(),
            "breaches": self._breaches_json(unit),
            "conflicts": [b.to_json(factor, energy_unit, unit) for b in self.conflicts],
            "optimality-proven": self.proven_optimal,
            "solver": self.solver,
            "message": self.message,
            "notes": list(self.notes),
        }


def _clean(values: np.ndarray) -> list[float]:
    """Floats for JSON, with solver noise below 1e-9 shown as 0."""
    return np.where(np.abs(values) < 1e-9, 0.0, values).astype(float).tolist()


def _iso_duration(seconds: float) -> str:
    """ISO 8601 duration for a step length, e.g. ``PT15M`` or ``PT1H``."""
    s = int(round(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    out = "P" + (f"{days}D" if days else "")
    t = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{s}S" if s else "")
    return out + ("T" + t if t else "") if (days or t) else "PT0S"
