"""Where a schedule request's sensor references get their values: the belief lookup.

A series field referencing a sensor (``{"sensor": "name"}``) takes the current
value of every event overlapping the window; an event must cover every step,
else :class:`MissingInput` names the sensor and the uncovered span. Overrides
sent with a request (``flex_model``, ``flex_context``) are JSON objects.

Forecast fallback: when forecasters of a sensor are registered, its beliefs
from other sources are read first (forecasts left out); steps they do not
cover take the latest median forecast of the sensor's forecasters (source
``forecaster:<name>``, cumulative probability 0.5, the first forecaster by
name that covers the step), and the resolver notes it, so the schedule's
message says which steps came from which forecaster. The combined series has
one value per step of the schedule: the value of the event covering the step's
start. Steps neither covers still raise :class:`MissingInput`.
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
from schemas.forecaster import SOURCE_PREFIX
from schemas.times import format_utc


class MissingInput(InputError):
    """A sensor the request needs has no beliefs for (part of) the window."""


class Lookup(Protocol):
    """Where current values come from (the belief state)."""

    def series(self, sensor: str, start: datetime, end: datetime) -> pd.Series:
        """Current values of events overlapping [start, end), with attrs['resolution'].

        Lookups that serve the forecast fallback also take ``source`` (only that
        source's beliefs) and ``exclude_prefix`` (leave out sources starting with it).
        """
        ...

    def latest_at(self, sensor: str, at: datetime) -> tuple[datetime, float] | None:
        """The most recent event at or before ``at``."""
        ...


def sensor_ref(value: Any) -> str | None:
    """The sensor name of a reference ``{"sensor": "name"}``, else None."""
    if isinstance(value, dict) and isinstance(value.get("sensor"), str):
        return value["sensor"]
    return None


def covered(s: pd.Series, grid: pd.DatetimeIndex, resolution: timedelta) -> np.ndarray:
    """Per step start of ``grid``: the position in ``s`` of the event covering it, or -1."""
    if not len(s):
        return np.full(len(grid), -1)
    starts = s.index.as_unit("us").asi8
    g = grid.as_unit("us").asi8
    pos = np.searchsorted(starts, g, side="right") - 1
    if resolution > timedelta(0):
        res_us = resolution // timedelta(microseconds=1)
        ok = (pos >= 0) & (g < np.where(pos >= 0, starts[np.maximum(pos, 0)] + res_us, 0))
    else:
        ok = pos >= 0  # instantaneous: the latest value at or before the step
    return np.where(ok, pos, -1)


def make_resolver(
    lookup: Lookup,
    sensors: Mapping[str, Sensor],
    start: datetime,
    end: datetime,
    step: timedelta,
    forecasters: Mapping[str, list[str]] | None = None,
    notes: list[str] | None = None,
) -> Any:
    """A resolver for ``parse_site_problem`` that checks every step is covered.

    ``forecasters``: per sensor, the names of its forecasters (the fallback);
    ``notes`` collects what the fallback filled in, for the schedule's message.
    """

    def resolve(ref: Any, field: str) -> pd.Series:
        name = sensor_ref(ref)
        sensor = sensors.get(name) if name else None
        if sensor is None:
            raise InputError(f"sensor {name!r} is not registered; register it first", field)
        fallback = (forecasters or {}).get(name, [])
        if fallback:
            s = lookup.series(name, start, end, exclude_prefix=SOURCE_PREFIX)  # type: ignore[call-arg]
        else:
            s = lookup.series(name, start, end)
        res = s.attrs.get("resolution", sensor.event_resolution)
        grid = pd.date_range(start, end, freq=step, inclusive="left")
        pos = covered(s, grid, res)
        ok = pos >= 0
        if not ok.all() and fallback:
            s, ok = _with_forecasts(lookup, name, s, pos, grid, step, fallback, notes)
        if not ok.all():
            missing = grid[~ok]
            raise MissingInput(
                f"no beliefs of sensor {name!r} for {int((~ok).sum())} of {len(grid)} steps, "
                f"from {format_utc(missing[0])} to {format_utc(missing[-1] + step)}; "
                "publish them or shorten the horizon"
                + (f" (its forecasters {', '.join(fallback)} cover no more)" if fallback else ""),
                field,
            )
        s.attrs["unit"] = sensor.unit
        return s

    return resolve


def _with_forecasts(
    lookup: Lookup,
    name: str,
    measured: pd.Series,
    pos: np.ndarray,
    grid: pd.DatetimeIndex,
    step: timedelta,
    forecasters: list[str],
    notes: list[str] | None,
) -> tuple[pd.Series, np.ndarray]:
    """One value per step: the measured event's, else the latest median forecast's."""
    values = np.full(len(grid), np.nan)
    ok = pos >= 0
    values[ok] = measured.to_numpy()[pos[ok]]
    start, end = grid[0].to_pydatetime(), (grid[-1] + step).to_pydatetime()
    for forecaster in forecasters:
        if ok.all():
            break
        source = SOURCE_PREFIX + forecaster
        fc = lookup.series(name, start, end, source=source)  # type: ignore[call-arg]
        fpos = covered(fc, grid, fc.attrs.get("resolution", step))
        fill = ~ok & (fpos >= 0)
        if not fill.any():
            continue
        values[fill] = fc.to_numpy()[fpos[fill]]
        ok = ok | fill
        if notes is not None:
            first, last = grid[fill][0], grid[fill][-1] + step
            notes.append(
                f"sensor {name!r}: {int(fill.sum())} of {len(grid)} steps "
                f"({format_utc(first)} to {format_utc(last)}) from the latest median forecast "
                f"of {source}"
            )
    out = pd.Series(values, index=pd.DatetimeIndex(grid, name="event_start"), name=name)
    out.attrs["resolution"] = step
    return out[ok] if not ok.all() else out, ok


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
