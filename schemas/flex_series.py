"""Resolve FlexMeasures-style values into one number per step or step boundary.

A field may hold:

- a quantity: ``"2 MW"``, ``"95%"``, or a bare number where the field is
  dimensionless (efficiencies) or has a unit for bare numbers (SOC fields:
  ``soc-unit``, else MWh as in FlexMeasures);
- a list of segments ``{"start", "duration" | "end", "value"}``: a segment applies
  to every step whose start lies in ``[start, end)``. Where segments overlap,
  the first listed wins, except for capacities (the minimum) and minima (the
  maximum), as in FlexMeasures; steps no segment covers get the field's default;
- a sensor reference ``{"sensor": ...}`` (a sensor id or name, optionally with
  source filters): handed to the caller's resolver (the streaming layer); without
  a resolver this is an error, because the offline CLI needs literal values.

SOC fields (``soc-minima``, ``soc-maxima``, ``soc-targets``) hold points
``{"datetime", "value"}`` or periods ``{"start", "duration" | "end", "value"}``
applying to every boundary in ``[start, end]``. Points between two step
boundaries are handed back to ``schemas.flex_devices``, which projects them onto
the surrounding boundaries as FlexMeasures does. Points and periods outside the
window are ignored (they matter to a later schedule, not this one).

A resolver is ``resolve(sensor_ref, field) -> pandas.Series | list``. A Series is
indexed by aware datetimes (event starts) and carries its unit in
``series.attrs["unit"]`` (and, for ``storage-efficiency``, optionally its event
resolution in ``series.attrs["resolution"]``); each step takes the latest value
at or before its start. A list gives one quantity per step.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pint

from schemas.errors import InputError
from schemas.flex_problem import TimeGrid
from schemas.segments import instants_us, paint
from schemas.times import US, parse_aware, parse_duration, to_us
from schemas.units import Q_, parse_quantity

Resolver = Callable[[Any, str], Any]

#: Segments ending after this (microseconds since 1970 UTC) are read one by one.
_LATEST_US = to_us(datetime(9000, 1, 1, tzinfo=UTC))


def step_times(grid: TimeGrid, n: int) -> pd.DatetimeIndex:
    """Starts of the first ``n`` steps (``grid.step_start``), as one index."""
    if isinstance(grid.start.tzinfo, timezone):
        # A fixed offset: wall-clock and absolute time advance alike.
        return pd.date_range(grid.start, periods=n, freq=grid.resolution)
    return pd.DatetimeIndex([grid.step_start(k) for k in range(n)])


#: How a flex-model or flex-context datetime that cannot be read, or has no offset, is told.
DATETIME_MESSAGES = {
    "unreadable": "cannot read {value!r} as an ISO 8601 datetime, e.g. 2024-05-01T12:00+02:00",
    "naive": "{value!r} has no timezone; add an offset such as +00:00 or Z",
}


def convert(q: pint.Quantity, target: str, field: str) -> float:
    """Magnitude of ``q`` in ``target``, with a message naming ``field`` on mismatch."""
    if q.dimensionless and target != "" and not Q_(1, target).dimensionless:
        raise InputError(
            f"{q.magnitude!r} has no unit; write it with one, e.g. '5 {target}'", field
        )
    try:
        return float(q.to(target).magnitude)
    except pint.errors.DimensionalityError:
        raise InputError(
            f"'{q:~}' cannot be expressed in {target or 'a plain number'}; "
            f"give a value in a unit like {target or '%'!r}",
            field,
        ) from None


_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


@lru_cache(maxsize=1024)
def _factor(unit_text: str, target: str) -> float | None:
    """Factor from ``unit_text`` to ``target``; ``None`` if they do not convert."""
    try:
        return float(Q_(1.0, unit_text).to(target).magnitude)
    except (pint.errors.PintError, ValueError, TypeError, AttributeError):
        return None


def magnitude(value: Any, target: str, field: str, bare: str | None = None) -> float:
    """A quantity's magnitude in ``target``; the common ``"<number> <unit>"`` form is cached.

    ``bare`` is the unit of a bare number (e.g. ``MWh`` for SOC fields without
    ``soc-unit``, as in FlexMeasures); without it a bare number needs a
    dimensionless ``target``.
    """
    if bare is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * _factor(bare, target)
    if isinstance(value, str):
        m = _NUMBER_UNIT.match(value)
        if m and m.group(2) and m.group(2) != "%" and not m.group(2)[0].isdigit():
            f = _factor(m.group(2), target)
            if f is not None and (target != "" or Q_(1.0, m.group(2)).dimensionless):
                return float(m.group(1)) * f
    return convert(parse_quantity(value, field), target, field)


# ``_NUMBER_UNIT`` for one line of several quantities joined by newlines.
_NUMBER_UNIT_LINES = re.compile(
    r"^[^\S\n]*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[^\S\n]*(.*?)[^\S\n]*$", re.M
)


def magnitudes(
    values: list[Any], target: str, field_of: Callable[[int], str], bare: str | None = None
) -> np.ndarray:
    """``magnitude`` of every value, with one unit conversion per distinct unit.

    The usual forms (``"<number> <unit>"`` strings, ``"95%"`` for a plain
    number, bare numbers) are read as arrays; anything else goes through
    ``magnitude`` one by one, so results and errors (the first failing value,
    named by ``field_of(i)``) are those of ``magnitude``.
    """
    out = np.full(len(values), np.nan)
    try:
        todo = _magnitudes_vectorised(values, target, bare, out)
    except (ValueError, TypeError, OverflowError):
        todo = np.arange(len(values))
    for i in todo.tolist():
        out[i] = magnitude(values[i], target, field_of(i), bare)
    return out


def _magnitudes_vectorised(
    values: list[Any], target: str, bare: str | None, out: np.ndarray
) -> np.ndarray:
    """Fill ``out`` where a value has a usual form; return the indices left to do."""
    types = [type(v) for v in values]
    todo = np.ones(len(values), dtype=bool)
    numbers = np.flatnonzero([issubclass(t, int | float) and t is not bool for t in types])
    if len(numbers):
        factor = _factor(bare, target) if bare is not None else (1.0 if target == "" else None)
        if factor is not None:
            raw = np.fromiter((float(values[i]) for i in numbers), float, len(numbers))
            out[numbers] = raw * factor if bare is not None else raw
            todo[numbers] = False
    texts = np.flatnonzero([issubclass(t, str) for t in types])
    if len(texts):
        joined = "\n".join([values[i] for i in texts])
        parts = _NUMBER_UNIT_LINES.findall(joined)
        if len(parts) == len(texts) and joined.count("\n") == len(texts) - 1:
            nums = np.fromiter((float(p[0]) for p in parts), float, len(parts))
            codes, names = pd.factorize(np.array([p[1] for p in parts], dtype=object))
            for code, name in enumerate(names):
                rows = codes == code
                if name and name != "%" and not name[0].isdigit():
                    f = _factor(name, target)
                    if f is None or (target == "" and not Q_(1.0, name).dimensionless):
                        continue
                    out[texts[rows]] = nums[rows] * f
                elif name == "%" and target == "":
                    out[texts[rows]] = nums[rows] / 100.0
                elif name == "" and target == "":
                    # A plain number written as text ("3.5"), e.g. a COP per step.
                    out[texts[rows]] = nums[rows]
                else:
                    continue
                todo[texts[rows]] = False
    return np.flatnonzero(todo)


def is_sensor_ref(value: Any) -> bool:
    """Whether ``value`` is a sensor reference ``{"sensor": ...}``."""
    return isinstance(value, dict) and "sensor" in value


@dataclass
class SeriesReader:
    """Reads field values onto one time grid, with an optional sensor resolver."""

    grid: TimeGrid
    resolver: Resolver | None = None

    def _resolve(self, ref: Any, field: str) -> Any:
        if self.resolver is None:
            raise InputError(
                f"sensor reference {ref!r} cannot be resolved here: the offline "
                "`flexstream schedule` command needs literal values (a quantity or a "
                "list of segments)",
                field,
            )
        return self.resolver(ref, field)

    def _series(self, resolved: Any, target: str, field: str, boundaries: bool) -> np.ndarray:
        n = self.grid.n + (1 if boundaries else 0)
        if isinstance(resolved, list | tuple):
            if len(resolved) < n:
                raise InputError(f"the sensor gave {len(resolved)} values, {n} needed", field)
            return magnitudes(list(resolved[:n]), target, lambda i: field)
        series = resolved
        try:
            unit_name = series.attrs.get("unit", "")
            idx = series.index
        except AttributeError:
            raise InputError("the resolver must return a pandas Series or a list", field) from None
        factor = convert(Q_(1.0, unit_name), target, field) if unit_name or target else 1.0
        s = series.sort_index()
        out = s.reindex(step_times(self.grid, n), method="ffill").to_numpy(dtype=float) * factor
        if len(idx) and np.isnan(out).all():
            raise InputError("the sensor has no values at or before the window's start", field)
        return out

    def steps(
        self,
        value: Any,
        field: str,
        target: str,
        default: float = np.nan,
        boundaries: bool = False,
        overlap: str = "first",
        bare: str | None = None,
    ) -> np.ndarray:
        """One value per step (or per boundary with ``boundaries``), in ``target`` units.

        Where segments overlap, ``overlap`` decides as FlexMeasures does: ``"first"``
        (the segment listed first; prices and most fields), ``"min"`` (capacities,
        maxima) or ``"max"`` (minima).
        """
        grid = self.grid
        n = grid.n + (1 if boundaries else 0)
        if value is None:
            return np.full(n, default)
        if is_sensor_ref(value):
            return self._series(self._resolve(value, field), target, field, boundaries)
        if isinstance(value, list):
            if value and all(not isinstance(v, dict) or is_sensor_ref(v) for v in value):
                # A list of quantities or sensors: their sum (e.g. several usage forecasts).
                total = np.zeros(n)
                for i, v in enumerate(value):
                    total += self.steps(v, f"{field}[{i}]", target, 0.0, boundaries, bare=bare)
                return total
            parsed = self._segments_vectorised(value, field, target, bare)
            lo, hi, v = parsed if parsed is not None else self._segments(value, field, target, bare)
            out = paint(lo, hi, v, n, grid.resolution // US, overlap)
            return np.where(np.isnan(out), default, out)
        return np.full(n, magnitude(value, target, field, bare))

    def _segments(
        self, segments: list[Any], field: str, target: str, bare: str | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start and end (microseconds from the window's start) and value of each segment.

        One segment at a time, in the order listed: the first bad one raises.
        """
        lo = np.empty(len(segments), dtype=np.int64)
        hi = np.empty(len(segments), dtype=np.int64)
        v = np.empty(len(segments))
        for i, seg in enumerate(segments):
            f = f"{field}[{i}]"
            a, b = self.segment_bounds(seg, f)
            v[i] = magnitude(seg.get("value"), target, f"{f}.value", bare)
            lo[i] = (a - self.grid.start) // US
            hi[i] = (b - self.grid.start) // US
        return lo, hi, v

    def _segments_vectorised(
        self, segments: list[Any], field: str, target: str, bare: str | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """``_segments`` as arrays for the usual forms; ``None`` for anything else.

        ``None`` also for any error: ``_segments`` then finds the first bad
        segment and words the message.
        """
        if not all(isinstance(seg, dict) and "start" in seg for seg in segments):
            return None
        lo = instants_us([seg["start"] for seg in segments], self.grid.start)
        if lo is None:
            return None
        hi = np.empty_like(lo)
        has_end = np.array(["end" in seg for seg in segments], dtype=bool)
        if has_end.any():
            rows = np.flatnonzero(has_end)
            ends = instants_us([segments[i]["end"] for i in rows], self.grid.start)
            if ends is None:
                return None
            hi[rows] = ends
        if not has_end.all():
            rows = np.flatnonzero(~has_end)
            texts = [segments[i].get("duration") for i in rows]
            if not all(isinstance(t, str) for t in texts):
                return None
            try:
                lengths = {t: parse_duration(t, field, positive=True) // US for t in set(texts)}
            except InputError:
                return None
            hi[rows] = lo[rows] + np.array([lengths[t] for t in texts], dtype=np.int64)
            # Far beyond any window: leave overflowing dates to the per-segment reader.
            if hi[rows].max() > _LATEST_US - to_us(self.grid.start):
                return None
        if np.any(hi < lo):
            return None
        try:
            values = magnitudes(
                [seg.get("value") for seg in segments],
                target,
                lambda i: f"{field}[{i}].value",
                bare,
            )
        except InputError:
            return None
        return lo, hi, values

    def segment_bounds(self, seg: Any, field: str) -> tuple[datetime, datetime]:
        """Start and end of a ``{"start", "duration" | "end"}`` segment."""
        if not isinstance(seg, dict):
            raise InputError(
                'expected a segment such as {"start": ..., "duration": "PT1H", "value": ...}', field
            )
        if "start" not in seg:
            raise InputError("a segment needs a 'start'", field)
        start = parse_aware(seg["start"], f"{field}.start", **DATETIME_MESSAGES)
        if "end" in seg:
            end = parse_aware(seg["end"], f"{field}.end", **DATETIME_MESSAGES)
        elif "duration" in seg:
            end = start + parse_duration(seg["duration"], f"{field}.duration", positive=True)
        else:
            raise InputError("a segment needs a 'duration' or an 'end'", field)
        if end < start:
            raise InputError("the segment ends before it starts", field)
        return start, end

    def soc_points(
        self,
        value: Any,
        field: str,
        target: str,
        combine: str,
        bare: str | None = None,
        off_grid: list[tuple[float, float]] | None = None,
    ) -> np.ndarray:
        """SOC constraints per boundary (``n + 1`` values, ``nan`` where none).

        ``combine`` settles several values at one boundary: ``"max"`` (minima),
        ``"min"`` (maxima) or ``"equal"`` (targets: differing values are an error).
        Points between two boundaries are appended to ``off_grid`` as
        ``(position in steps, value)`` for the caller to project onto the grid;
        without ``off_grid`` they are an error.
        """
        grid = self.grid
        out = np.full(grid.n + 1, np.nan)
        if value is None:
            return out
        if is_sensor_ref(value):
            return self._series(self._resolve(value, field), target, field, True)
        if not isinstance(value, list):
            raise InputError(
                'expected a list such as [{"datetime": "2024-05-01T18:00Z", "value": "40 kWh"}]',
                field,
            )
        if self._soc_points_vectorised(value, field, target, combine, bare, off_grid, out):
            return out
        res = grid.resolution.total_seconds()
        for i, point in enumerate(value):
            f = f"{field}[{i}]"
            if not isinstance(point, dict):
                raise InputError('expected {"datetime": ..., "value": ...}', f)
            v = magnitude(point.get("value"), target, f"{f}.value", bare)
            instant = "datetime" in point or (
                "start" in point and "end" in point and point["start"] == point["end"]
            )
            if instant:
                key = "datetime" if "datetime" in point else "start"
                when = parse_aware(point[key], f"{f}.{key}", **DATETIME_MESSAGES)
                pos = (when - grid.start).total_seconds() / res
                if abs(pos - round(pos)) > 1e-6 and off_grid is not None:
                    if 0 < pos < grid.n:
                        off_grid.append((pos, v))
                    continue
                if abs(pos - round(pos)) > 1e-6:
                    raise InputError(
                        f"{point[key]} is not on a step boundary of the schedule "
                        f"(start {grid.start.isoformat()}, resolution {grid.resolution})",
                        f"{f}.{key}",
                    )
                ks = [int(round(pos))]
            else:
                lo, hi = self.segment_bounds(point, f)
                a = (lo - grid.start).total_seconds() / res
                b = (hi - grid.start).total_seconds() / res
                ks = list(range(max(int(np.ceil(a - 1e-9)), 0), int(np.floor(b + 1e-9)) + 1))
            for k in ks:
                if not 0 <= k <= grid.n:
                    continue
                old = out[k]
                if np.isnan(old):
                    out[k] = v
                elif combine == "max":
                    out[k] = max(old, v)
                elif combine == "min":
                    out[k] = min(old, v)
                elif abs(old - v) > 1e-9:
                    raise InputError(
                        f"two different targets ({old:g} and {v:g} {target}) at "
                        f"{grid.step_start(k).isoformat()}",
                        f,
                    )
        return out

    def _soc_points_vectorised(
        self,
        points: list[Any],
        field: str,
        target: str,
        combine: str,
        bare: str | None,
        off_grid: list[tuple[float, float]] | None,
        out: np.ndarray,
    ) -> bool:
        """``soc_points`` as arrays for a list of ``{"datetime", "value"}`` points.

        Fills ``out`` (and ``off_grid``) and returns True, or returns False with
        both untouched for any other form or any error, which the per-point
        reader then words.
        """
        if not all(isinstance(p, dict) and "datetime" in p for p in points):
            return False
        when = instants_us([p["datetime"] for p in points], self.grid.start)
        if when is None:
            return False
        try:
            v = magnitudes(
                [p.get("value") for p in points], target, lambda i: f"{field}[{i}].value", bare
            )
        except InputError:
            return False
        n = self.grid.n
        pos = (when / 1e6) / self.grid.resolution.total_seconds()
        nearest = np.round(pos)
        between = np.abs(pos - nearest) > 1e-6
        if between.any() and off_grid is None:
            return False
        k = nearest.astype(np.int64)
        on = ~between & (k >= 0) & (k <= n) & ~np.isnan(v)
        k, vals = k[on], v[on]
        if combine == "equal":
            first = np.full(n + 1, len(vals), dtype=np.int64)
            np.minimum.at(first, k, np.arange(len(vals)))
            if np.any(np.abs(vals - vals[first[k]]) > 1e-9):
                return False
            hit = first < len(vals)
            out[hit] = vals[first[hit]]
        else:
            (np.fmax if combine == "max" else np.fmin).at(out, k, vals)
        if between.any() and off_grid is not None:
            inside = between & (pos > 0) & (pos < n)
            off_grid.extend(zip(pos[inside].tolist(), v[inside].tolist(), strict=True))
        return True


def currency_of(value: Any, reader: SeriesReader) -> str:
    """The unit a price is counted in (its numerator), e.g. ``EUR`` or ``kg``."""
    sample = value
    if isinstance(value, list) and value and isinstance(value[0], dict):
        sample = value[0].get("value")
    if is_sensor_ref(sample):
        resolved = reader._resolve(sample, "consumption-price")
        unit_name = getattr(resolved, "attrs", {}).get("unit")
        q = Q_(1.0, unit_name) if unit_name else parse_quantity(resolved[0], "consumption-price")
    else:
        q = parse_quantity(sample, "consumption-price")
    base = (Q_(1.0, q.units) * Q_(1.0, "kWh")).to_base_units()
    dims = base.dimensionality
    if q.dimensionless or "[length]" in dims or "[time]" in dims:
        raise InputError(
            f"'{q:~}' is not a price per energy; write e.g. '100 EUR/MWh' or '350 kg/MWh'",
            "consumption-price",
        )
    return f"{base.units:~}"


def price_per_power(value: Any, field: str, reader: SeriesReader, currency: str) -> np.ndarray:
    """A capacity breach price as currency per kW per step."""
    sample = value[0].get("value") if isinstance(value, list) and value else value
    if not is_sensor_ref(sample):
        q = parse_quantity(sample, field)
        try:
            q.to(f"{currency}/kWh")
            per_energy = True
        except pint.errors.DimensionalityError:
            per_energy = False
        if per_energy:
            return reader.steps(value, field, f"{currency}/kWh", np.nan) * reader.grid.dt_hours
    return reader.steps(value, field, f"{currency}/kW", np.nan)


def non_negative(arr: np.ndarray, field: str) -> np.ndarray:
    """``arr`` unchanged; an error naming ``field`` if any value is negative."""
    if np.any(arr < 0):
        raise InputError("give magnitudes (not negative values)", field)
    return arr
