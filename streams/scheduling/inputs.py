"""Where a schedule request's sensor references get their values: the belief lookup.

A series field referencing a sensor (``{"sensor": "name"}``) takes the current
value of every event overlapping the window; an event must cover every step,
else :class:`MissingInput` names the sensor and the uncovered span. Overrides
sent with a request (``flex_model``, ``flex_context``) are JSON objects.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd

from schemas.beliefs import Sensor
from schemas.errors import InputError
from schemas.times import format_utc


class MissingInput(InputError):
    """A sensor the request needs has no beliefs for (part of) the window."""


class Lookup(Protocol):
    """Where current values come from (the belief state)."""

    def series(self, sensor: str, start: datetime, end: datetime) -> pd.Series:
        """Current values of events overlapping [start, end), with attrs['resolution']."""
        ...

    def latest_at(self, sensor: str, at: datetime) -> tuple[datetime, float] | None:
        """The most recent event at or before ``at``."""
        ...


def sensor_ref(value: Any) -> str | None:
    """The sensor name of a reference ``{"sensor": "name"}``, else None."""
    if isinstance(value, dict) and isinstance(value.get("sensor"), str):
        return value["sensor"]
    return None


def make_resolver(
    lookup: Lookup,
    sensors: Mapping[str, Sensor],
    start: datetime,
    end: datetime,
    step: timedelta,
) -> Any:
    """A resolver for ``parse_site_problem`` that checks every step is covered."""

    def resolve(ref: Any, field: str) -> pd.Series:
        name = sensor_ref(ref)
        sensor = sensors.get(name) if name else None
        if sensor is None:
            raise InputError(f"sensor {name!r} is not registered; register it first", field)
        s = lookup.series(name, start, end)
        res = s.attrs.get("resolution", sensor.event_resolution)
        grid = pd.date_range(start, end, freq=step, inclusive="left")
        if not len(s):
            ok = np.zeros(len(grid), dtype=bool)
        elif res > timedelta(0):
            starts = s.index.as_unit("us").asi8
            g = grid.as_unit("us").asi8
            pos = np.searchsorted(starts, g, side="right") - 1
            res_us = res // timedelta(microseconds=1)
            ok = (pos >= 0) & (g < np.where(pos >= 0, starts[np.maximum(pos, 0)] + res_us, 0))
        else:
            first = s.index[0] if len(s) else None
            ok = np.asarray([first is not None and t >= first for t in grid])
        if not ok.all():
            missing = grid[~ok]
            raise MissingInput(
                f"no beliefs of sensor {name!r} for {int((~ok).sum())} of {len(grid)} steps, "
                f"from {format_utc(missing[0])} to {format_utc(missing[-1] + step)}; "
                "publish them or shorten the horizon",
                field,
            )
        s.attrs["unit"] = sensor.unit
        return s

    return resolve


_OVERRIDE_EXAMPLES = {
    "flex_model": '{"sensor": "battery", "soc-max": "10 kWh"}',
    "flex_context": '{"site-power-capacity": "25 kW"}',
}


def json_override(request: Mapping[str, Any], key: str) -> Any:
    """The request's JSON override ``key`` parsed, or None when it has none."""
    text = request.get(key)
    if not text:
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        where = (
            f" ({exc.msg} at line {exc.lineno} column {exc.colno})"
            if isinstance(exc, json.JSONDecodeError)
            else ""
        )
        raise InputError(
            f"is not valid JSON{where}; send a JSON object such as {_OVERRIDE_EXAMPLES[key]}",
            key,
        ) from None
