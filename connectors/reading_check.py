"""Readings checked against the known sensors before they are sent.

The worker dead-letters a reading of an unknown sensor, in a unit that does not
convert to its sensor's, or at another resolution than its sensor's; a
producer that knows the sensors (the registry and the worker's sensors file)
finds these before sending anything. Pure: the sensors are given.

Two producers use it and word their errors for their users: ``flexstream
publish`` names the CSV row and its flags (:data:`CLI`, :func:`check_readings`),
the SDK names the index of the values and its arguments (:data:`SDK`,
:func:`check_messages` with :class:`Outgoing` records).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from connectors.files import Reading
from schemas.beliefs import Sensor
from schemas.errors import InputError
from schemas.times import format_duration
from schemas.units import is_convertible


@dataclass(frozen=True)
class Outgoing:
    """One message about to be sent: its schema, its record, and where it came from."""

    #: ``Belief`` or ``BeliefBatch``.
    schema: str
    record: Mapping[str, Any]
    #: Where the user finds it, e.g. ``row 3`` or ``values[0:96]``.
    where: str


@dataclass(frozen=True)
class Wording:
    """How a producer's user is told what to do: its names for the options involved."""

    #: How to send without checking.
    skip: str
    #: How to make a sensor of the worker's sensors file known to the check.
    sensors_file: str
    #: The field named when the resolution is wrong.
    resolution_field: str
    #: What to do when the resolution is wrong.
    resolution_fix: str


CLI = Wording(
    skip="--no-check sends without checking",
    sensors_file="add it to the worker's sensors file",
    resolution_field="event_resolution",
    resolution_fix="resample to the sensor's resolution, or pass --resolution for single readings",
)
SDK = Wording(
    skip="check=False sends without checking",
    sensors_file="give the client the worker's sensors file (sensors_file=) if it is there",
    resolution_field="resolution",
    resolution_fix="resample the values to the sensor's resolution and pass it as resolution",
)


def check_readings(readings: Iterable[Reading], sensors: Mapping[str, Sensor]) -> None:
    """Check the messages of a CSV (see :func:`check_messages`); errors name the row."""
    check_messages((Outgoing(r.schema, r.record, f"row {r.row}") for r in readings), sensors, CLI)


def check_messages(
    messages: Iterable[Outgoing], sensors: Mapping[str, Sensor], wording: Wording = SDK
) -> None:
    """Raise :class:`InputError` for the first message the worker would reject for its sensor.

    The message names the sensor and where the values came from, and says what to do.
    """
    for m in messages:
        rec = m.record
        name = rec["sensor"]
        sensor = sensors.get(name)
        if sensor is None:
            raise InputError(
                f"sensor {name!r} ({m.where}) is not registered; register it with "
                f"'flexstream add sensor', {wording.sensors_file}, or fix the name "
                f"({wording.skip})",
                "sensor",
            )
        unit = rec.get("unit")
        if unit and unit != sensor.unit and not is_convertible(unit, sensor.unit):
            raise InputError(
                f"unit {unit!r} ({m.where}) cannot be converted to sensor {name!r}'s unit "
                f"{sensor.unit!r}; send values in a compatible unit",
                "unit",
            )
        batch = m.schema == "BeliefBatch"
        res = timedelta(milliseconds=rec["resolution_ms" if batch else "event_resolution_ms"])
        instantaneous = sensor.event_resolution == timedelta(0) and batch
        if res != sensor.event_resolution and not instantaneous:
            apart = format_duration(res, zero="PT0M")
            wanted = format_duration(sensor.event_resolution, zero="PT0M")
            what = (
                f"the readings of {name!r} from {m.where} are {apart} apart"
                if batch
                else f"the reading of {name!r} ({m.where}) lasts {apart}"
            )
            raise InputError(
                f"{what}, but the sensor's event resolution is {wanted}; {wording.resolution_fix}",
                wording.resolution_field,
            )
