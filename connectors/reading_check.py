"""Readings checked against the known sensors before they are sent.

The worker dead-letters a reading of an unknown sensor, in a unit that does not
convert to its sensor's, or at another resolution than its sensor's; a
producer that knows the sensors (the registry and the worker's sensors file)
finds these before sending anything. Pure: the sensors are given.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta

from connectors.files import Reading
from schemas.beliefs import Sensor
from schemas.errors import InputError
from schemas.times import format_duration
from schemas.units import is_convertible


def check_readings(readings: Iterable[Reading], sensors: Mapping[str, Sensor]) -> None:
    """Raise :class:`InputError` for the first reading the worker would reject for its sensor.

    The message names the sensor and the CSV row, and says what to do.
    """
    for r in readings:
        rec = r.record
        name = rec["sensor"]
        sensor = sensors.get(name)
        if sensor is None:
            raise InputError(
                f"sensor {name!r} (row {r.row}) is not registered; register it with "
                "'flexstream add sensor', add it to the worker's sensors file, or fix the "
                "name (--no-check sends without checking)",
                "sensor",
            )
        unit = rec.get("unit")
        if unit and unit != sensor.unit and not is_convertible(unit, sensor.unit):
            raise InputError(
                f"unit {unit!r} (row {r.row}) cannot be converted to sensor {name!r}'s unit "
                f"{sensor.unit!r}; send values in a compatible unit",
                "unit",
            )
        batch = r.schema == "BeliefBatch"
        res = timedelta(milliseconds=rec["resolution_ms" if batch else "event_resolution_ms"])
        instantaneous = sensor.event_resolution == timedelta(0) and batch
        if res != sensor.event_resolution and not instantaneous:
            apart = format_duration(res, zero="PT0M")
            wanted = format_duration(sensor.event_resolution, zero="PT0M")
            raise InputError(
                f"the readings of {name!r} from row {r.row} are {apart} apart, but the "
                f"sensor's event resolution is {wanted}; resample "
                "to the sensor's resolution, or pass --resolution for single readings",
                "event_resolution",
            )
