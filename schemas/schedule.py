"""The answer to a schedule request: its ``Status`` and the ``Schedule`` record of one device.

One record type from the worker to the controllers: the scheduling agent builds
``Schedule`` records from the solver's result (``ScheduleResult.to_schedules``)
or from a request it cannot answer (:meth:`ScheduleRequestContext.failed`), sends
them with :meth:`Schedule.to_avro`, and the SDK and the CLI read them back with
:meth:`Schedule.from_avro` (``schedule.avsc``, Confluent framing).

Statuses travel as plain Avro strings, not as an Avro enum. An enum would need a
new schema version, which readers of the current ids cannot read at all (they
refuse unknown schema ids), and every status added later would again change the
schema. As a string, writers and readers of every version keep working, and a
reader maps a status it does not know to ``unknown`` (:meth:`Status.parse`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from schemas import serde
from schemas.errors import InputError
from schemas.times import aware, format_duration

_MS = timedelta(milliseconds=1)


class Status(StrEnum):
    """Outcome of a schedule request (the ``status`` of every ``Schedule``).

    From the solver (``solvers.schedule``):

    - ``optimal``: proven optimal, every constraint met (hard ones within 1e-6).
    - ``relaxed``: proven optimal after breaching soft constraints at their
      breach prices; every breach is listed.
    - ``infeasible``: no schedule meets the hard constraints; the conflicting
      constraints are listed.
    - ``unbounded``: the cost can fall without limit (a power limit is missing).
    - ``time-limit``: the time limit ended the search; a schedule is returned
      when one was found, but its optimality is not proven.
    - ``unknown``: anything else the solver reported (and, for a reader, a
      status written by a newer version).

    From the scheduler, for requests that never reach the solver:

    - ``invalid``: the request cannot be read as asked (bad input); the message
      names the field.
    - ``error``: inputs are missing (beliefs not published yet) or the scheduler
      failed; asking again later may succeed.
    """

    OPTIMAL = "optimal"
    RELAXED = "relaxed"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    TIME_LIMIT = "time-limit"
    UNKNOWN = "unknown"
    INVALID = "invalid"
    ERROR = "error"

    @classmethod
    def parse(cls, text: str) -> Status:
        """Map a status string to a ``Status``; strings not known map to ``UNKNOWN``."""
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN

    @property
    def usable(self) -> bool:
        """Whether a schedule proven optimal (possibly with priced breaches) comes with it."""
        return self in (Status.OPTIMAL, Status.RELAXED)

    @property
    def failed(self) -> bool:
        """Whether the request was answered without a schedule that could ever be followed.

        ``infeasible``, ``invalid`` and ``error``; ``unbounded``, ``time-limit`` and
        ``unknown`` are outcomes not proven either way.
        """
        return self in (Status.INFEASIBLE, Status.INVALID, Status.ERROR)


#: The statuses whose schedule can be followed.
USABLE = frozenset({Status.OPTIMAL, Status.RELAXED})


def _json(text: str, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except json.JSONDecodeError:
        return default


@dataclass(frozen=True)
class Schedule:
    """The schedule of one device (``schedule.avsc``); power: consumption positive.

    ``values`` holds one power per step of ``resolution`` from ``start`` (empty
    unless the status is usable); ``state_of_charge`` one value per step boundary.
    ``costs`` and ``breaches`` are the request's (all devices), JSON text on the
    wire. A status given as a string is turned into a :class:`Status` (an unknown
    one raises ValueError); ``start`` and ``belief_time`` must be aware (else
    InputError) and are kept in UTC.
    """

    request_id: str
    asset: str
    sensor: str
    status: Status
    start: datetime
    resolution: timedelta
    belief_time: datetime
    values: list[float] = field(default_factory=list)
    unit: str = "kW"
    state_of_charge: list[float] = field(default_factory=list)
    soc_unit: str = "kWh"
    costs_total: float | None = None
    currency: str = ""
    costs: dict[str, Any] = field(default_factory=dict)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    solver_time_ms: float = 0.0
    origin: str = "request"
    answered_devices: list[str] = field(default_factory=list)
    #: The sensor ``state_of_charge`` is stored under as beliefs (None: not stored).
    soc_sensor: str | None = None

    def __post_init__(self) -> None:
        """Turn a status string into a ``Status``; check the times are aware, make them UTC."""
        if type(self.status) is not Status:
            object.__setattr__(self, "status", Status(self.status))
        for name in ("start", "belief_time"):
            object.__setattr__(self, name, aware(getattr(self, name), name))

    @property
    def ok(self) -> bool:
        """True when the schedule can be followed (status optimal or relaxed)."""
        return self.status.usable

    @property
    def timestamps(self) -> list[datetime]:
        """The start of each step of ``values``."""
        return [self.start + i * self.resolution for i in range(len(self.values))]

    @property
    def end(self) -> datetime:
        """The end of the last step."""
        return self.start + len(self.values) * self.resolution

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Schedule:
        """Build from a decoded ``Schedule`` record (any schema version).

        ``costs`` and ``breaches`` that are not valid JSON read as empty; a status
        this version does not know reads as ``unknown``.
        """
        return cls(
            request_id=rec["request_id"],
            asset=rec["asset"],
            sensor=rec["sensor"],
            status=Status.parse(rec["status"]),
            start=rec["start"],
            resolution=timedelta(milliseconds=rec["resolution_ms"]),
            belief_time=rec["belief_time"],
            values=[float(v) for v in rec.get("values", [])],
            unit=rec.get("unit", "kW"),
            state_of_charge=[float(v) for v in rec.get("state_of_charge", [])],
            soc_unit=rec.get("soc_unit", "kWh"),
            costs_total=rec.get("costs_total"),
            currency=rec.get("currency", ""),
            costs=_json(rec.get("costs", "{}"), {}),
            breaches=_json(rec.get("breaches", "[]"), []),
            message=rec.get("message", ""),
            solver_time_ms=float(rec.get("solver_time_ms", 0.0)),
            origin=rec.get("origin", "request"),
            answered_devices=list(rec.get("answered_devices") or []),
            soc_sensor=rec.get("soc_sensor"),
        )

    def to_record(self) -> dict[str, Any]:
        """The Avro record of the current schema version (``costs``, ``breaches`` as JSON)."""
        return {
            "request_id": self.request_id,
            "asset": self.asset,
            "sensor": self.sensor,
            "status": str(self.status),
            "message": self.message,
            "start": self.start,
            "resolution_ms": self.resolution // _MS,
            "values": list(self.values),
            "unit": self.unit,
            "state_of_charge": list(self.state_of_charge),
            "soc_unit": self.soc_unit,
            "costs_total": self.costs_total,
            "currency": self.currency,
            "costs": json.dumps(self.costs),
            "breaches": json.dumps(self.breaches),
            "solver_time_ms": self.solver_time_ms,
            "belief_time": self.belief_time,
            "origin": self.origin,
            "answered_devices": list(self.answered_devices),
            "soc_sensor": self.soc_sensor,
        }

    def to_avro(self) -> bytes:
        """The framed Avro message for the schedules topic."""
        return serde.encode("Schedule", self.to_record())

    @classmethod
    def from_avro(cls, data: bytes) -> Schedule:
        """Read a framed message of any ``Schedule`` schema version; raises InputError."""
        kind, rec = serde.decode(data)
        if kind != "Schedule":
            raise InputError(f"a {kind} is not a Schedule", "value")
        return cls.from_record(rec)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict with ISO 8601 times and durations (NaN becomes null)."""

        def num(v: float | None) -> float | None:
            return v if v is not None and math.isfinite(v) else None

        return {
            "request_id": self.request_id,
            "asset": self.asset,
            "sensor": self.sensor,
            "status": str(self.status),
            "message": self.message,
            "start": self.start.isoformat(),
            "resolution": format_duration(self.resolution, zero="P0D"),
            "unit": self.unit,
            "values": [num(v) for v in self.values],
            "soc_unit": self.soc_unit,
            "state_of_charge": [num(v) for v in self.state_of_charge],
            "costs_total": num(self.costs_total),
            "currency": self.currency,
            "costs": self.costs,
            "breaches": self.breaches,
            "solver_time_ms": self.solver_time_ms,
            "belief_time": self.belief_time.isoformat(),
            "origin": self.origin,
            "answered_devices": list(self.answered_devices),
        }


@dataclass(frozen=True)
class ScheduleRequestContext:
    """What every answer to one request carries besides the solver's outcome.

    ``devices`` are the devices answered (one ``Schedule`` each, in this order);
    ``belief_time`` is when the answer was computed.
    """

    request_id: str
    asset: str
    devices: tuple[str, ...]
    start: datetime
    resolution: timedelta
    belief_time: datetime
    origin: str = "request"

    def schedule(self, sensor: str, status: Status, **fields: Any) -> Schedule:
        """The ``Schedule`` of ``sensor`` in this request, with the other ``fields`` given."""
        return Schedule(
            request_id=self.request_id,
            asset=self.asset,
            sensor=sensor,
            status=status,
            start=self.start,
            resolution=self.resolution,
            belief_time=self.belief_time,
            origin=self.origin,
            answered_devices=list(self.devices),
            **fields,
        )

    def failed(self, status: Status, message: str) -> list[Schedule]:
        """Answers to a request that could not be scheduled, one per device."""
        return [self.schedule(d, status, message=message) for d in self.devices]
