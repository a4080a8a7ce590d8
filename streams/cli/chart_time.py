"""The time axis of charts in a local timezone: which zone, wall-clock text, tick marks.

Vega-Lite knows only the browser's timezone and UTC. Charts therefore place
every event at its true instant on a UTC scale (so the 25-hour day of a
DST change keeps its repeated hour apart and the 23-hour day has no gap), and
show local time through the data and the axis, both computed here:

- :func:`wall_clock` writes each event's local wall-clock time as text (with
  the zone's abbreviation, which tells the two 02:00s of an autumn night
  apart) for tooltips;
- :func:`local_ticks` picks tick instants at round local times (whole hours,
  local midnights, first days of months) and labels them in local time;
  :func:`label_expr` turns them into the axis' label expression.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pandas as pd

from schemas.times import zone

#: At most this many ticks on the time axis (about one per 60 px of a 720 px chart).
MAX_TICKS = 12

#: Tick steps, finest first: (unit, count); ``h`` hours, ``d`` days, ``m`` months, ``y`` years.
_STEPS: tuple[tuple[str, int], ...] = (
    ("h", 1), ("h", 2), ("h", 3), ("h", 6), ("h", 12),
    ("d", 1), ("d", 2), ("d", 7),
    ("m", 1), ("m", 2), ("m", 3), ("m", 6),
    ("y", 1), ("y", 2), ("y", 5), ("y", 10), ("y", 50),
)  # fmt: skip
_SECONDS = {"h": 3600.0, "d": 86400.0, "m": 30.44 * 86400, "y": 365.25 * 86400}


def chart_zone(zones: Mapping[str, str], override: str | None = None) -> tuple[str, str | None]:
    """The timezone to chart in, and a note for the title when it is UTC by necessity.

    ``zones`` maps each charted sensor to its timezone. ``override`` (validated)
    wins; else the sensors' common zone; else UTC, with a note naming the zones.
    """
    if override is not None:
        zone(override, "--timezone")
        return override, None
    distinct = sorted(set(zones.values()))
    if len(distinct) == 1:
        return distinct[0], None
    if not distinct:
        return "UTC", None
    return "UTC", "times in UTC: the sensors' timezones differ (" + ", ".join(distinct) + ")"


def wall_clock(instants: pd.Series, timezone: str) -> pd.Series:
    """Aware UTC instants as local wall-clock text, e.g. ``2026-10-25 02:00 CET``."""
    return instants.dt.tz_convert(timezone).dt.strftime("%Y-%m-%d %H:%M %Z")


def _wall_times(lo: datetime, hi: datetime, unit: str, n: int) -> Iterator[datetime]:
    """Naive local wall-clock times on round ``n``-``unit`` marks from ``lo`` to ``hi``."""
    if unit == "h":
        t = lo.replace(hour=lo.hour - lo.hour % n, minute=0, second=0, microsecond=0)
        while t <= hi:
            yield t
            t += timedelta(hours=n)
    elif unit == "d":
        t = lo.replace(hour=0, minute=0, second=0, microsecond=0)
        while t <= hi:
            yield t
            t += timedelta(days=n)
    elif unit == "m":
        year, month = lo.year, lo.month - (lo.month - 1) % n
        while (t := datetime(year, month, 1)) <= hi:  # noqa: DTZ001 - local wall clock
            yield t
            year, month = year + (month - 1 + n) // 12, (month - 1 + n) % 12 + 1
    else:
        year = lo.year - lo.year % n
        while (t := datetime(year, 1, 1)) <= hi:  # noqa: DTZ001 - local wall clock
            yield t
            year += n


def _label(t: datetime, unit: str) -> str:
    if unit == "h" and (t.hour, t.minute) != (0, 0):
        return t.strftime("%H:%M")
    if unit in ("h", "d"):
        return f"{calendar.day_abbr[t.weekday()]} {t.day} {calendar.month_abbr[t.month]}"
    if unit == "m":
        return f"{calendar.month_abbr[t.month]} {t.year}"
    return str(t.year)


def local_ticks(start: datetime, end: datetime, timezone: str) -> list[tuple[int, str]]:
    """Ticks between ``start`` and ``end`` at round local times: (epoch ms, local label).

    The step is the finest of :data:`_STEPS` giving at most :data:`MAX_TICKS`
    ticks. Wall-clock marks that do not exist (a skipped spring hour) are left
    out; a repeated autumn hour gets one tick, at its first occurrence.
    """
    tz = zone(timezone, "timezone")
    span = max((end - start).total_seconds(), 1.0)
    unit, n = next(((u, k) for u, k in _STEPS if span / (k * _SECONDS[u]) <= MAX_TICKS), _STEPS[-1])
    lo = start.astimezone(tz).replace(tzinfo=None)
    hi = end.astimezone(tz).replace(tzinfo=None)
    ticks = []
    for wall in _wall_times(lo, hi, unit, n):
        instant = wall.replace(tzinfo=tz).astimezone(UTC)
        if instant.astimezone(tz).replace(tzinfo=None) != wall:
            continue  # no such local time
        if start <= instant <= end:
            ticks.append((round(instant.timestamp() * 1000), _label(wall, unit)))
    return ticks


def label_expr(ticks: list[tuple[int, str]]) -> str:
    """A Vega expression giving each tick's label (by its epoch ms), empty for others."""
    expr = "''"
    for ms, label in reversed(ticks):
        text = label.replace("\\", "\\\\").replace("'", "\\'")
        expr = f"+datum.value === {ms} ? '{text}' : {expr}"
    return expr
