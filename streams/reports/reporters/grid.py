"""Time grids of a report window, resampling onto them, and unit conversion on a grid.

Two grids per report window:

- the *output bins*: the report resolution. A resolution that is a whole
  number of days means calendar days in the report timezone, so a day bin is
  23 or 25 hours long around daylight-saving changes; any other resolution is
  a fixed duration stepped from the window start.
- the *evaluation slots*: each output bin cut into steps of the finest input
  resolution (never coarser than the bin; the last slot of a bin may be
  shorter when the step does not divide it). Reporters compute on the slots;
  results are then aggregated onto the bins.

Resampling is by time overlap, so up- and downsampling and irregular events use
one rule. How values combine depends on the unit:

- *extensive* quantities (energy, currency, mass, volume) are amounts per
  event: a slot gets the overlapping fraction of each event (sums);
- *intensive* quantities (power, prices, ratios, temperatures) are rates or
  levels: a slot gets the duration-weighted mean of the overlapping events.

A slot is complete only when non-NaN events cover all of it; otherwise it is
NaN. Instantaneous events (zero resolution) count as samples: a slot gets the
mean of the samples inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import cached_property, lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pint

from schemas.errors import InputError
from schemas.times import aware
from schemas.times import zone as iana_zone
from schemas.units import Q_, unit

_DAY = timedelta(days=1)
_NS_PER_HOUR = 3_600_000_000_000


def zone(name: str) -> ZoneInfo:
    """Return the IANA timezone ``name``, or raise :class:`InputError` naming ``timezone``."""
    return iana_zone(name, "timezone")


def is_calendar(resolution: timedelta) -> bool:
    """Tell whether ``resolution`` is a whole number of (calendar) days."""
    return resolution >= _DAY and resolution % _DAY == timedelta(0)


#: What a report's window bound without a UTC offset is told.
AWARE_HINT = "must be timezone-aware (e.g. 2026-03-29T00:00:00+01:00)"


def output_edges(
    window_start: datetime, window_end: datetime, resolution: timedelta, timezone: str
) -> np.ndarray:
    """Return the output bin edges (int64 ns, UTC) of ``[window_start, window_end)``.

    For calendar-day resolutions both window ends must be local midnights in
    ``timezone``; otherwise the window must be a whole number of resolutions.
    """
    start = aware(window_start, "window_start", naive=AWARE_HINT)
    end = aware(window_end, "window_end", naive=AWARE_HINT)
    if end <= start:
        raise InputError("window_end must be after window_start", "window_end")
    if resolution <= timedelta(0):
        raise InputError("must be a positive duration", "resolution")
    if is_calendar(resolution):
        tz = zone(timezone)
        step = resolution // _DAY
        local_start = start.astimezone(tz)
        if local_start.time() != time(0):
            raise InputError(
                f"daily reports start at local midnight in {timezone}; got {local_start}",
                "window_start",
            )
        edges: list[datetime] = []
        day = local_start.date()
        while True:
            edge = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
            edges.append(edge)
            if edge >= end:
                break
            day += timedelta(days=step)
        if edges[-1] != end:
            raise InputError(
                f"daily reports end at a local midnight in {timezone}, a whole number of "
                f"{step}-day bins after window_start; got {end.astimezone(tz)}",
                "window_end",
            )
    else:
        if (end - start) % resolution != timedelta(0):
            raise InputError(
                f"the window {end - start} is not a whole number of resolutions ({resolution})",
                "window_end",
            )
        n = (end - start) // resolution
        edges = [start + i * resolution for i in range(n + 1)]
    return pd.DatetimeIndex(edges).tz_convert("UTC").as_unit("ns").asi8.copy()


def slot_edges(bin_edges: np.ndarray, step_ns: int | None) -> np.ndarray:
    """Cut each output bin into slots of ``step_ns`` (the last one may be shorter)."""
    if step_ns is None or step_ns <= 0:
        return bin_edges.copy()
    parts = [
        np.arange(a, b, step_ns, dtype=np.int64)
        for a, b in zip(bin_edges[:-1], bin_edges[1:], strict=True)
    ]
    return np.concatenate([*parts, bin_edges[-1:]]).astype(np.int64)


@lru_cache(maxsize=256)
def is_extensive(unit_name: str | None) -> bool:
    """Tell whether a unit measures an amount (energy, currency, mass, volume).

    Amounts are summed when downsampling and split when upsampling; all other
    units (power, prices, ratios, temperatures) are averaged.
    """
    if not unit_name:
        return False
    dims = dict(unit(unit_name).dimensionality)
    energy = {"[mass]": 1, "[length]": 2, "[time]": -2}
    if dims == energy or dims == {"[mass]": 1} or dims == {"[length]": 3}:
        return True
    return (
        len(dims) == 1 and next(iter(dims)).startswith("[currency_") and dims[next(iter(dims))] == 1
    )


@lru_cache(maxsize=512)
def _flow_factors(from_unit: str, to_unit: str) -> tuple[float, int]:
    """Return ``(factor, hours_power)``: ``to = factor * from * slot_hours**hours_power``."""
    for power in (0, 1, -1):
        try:
            q = Q_(1.0, unit(from_unit)) * Q_(1.0, "hour") ** power
            return float(q.to(unit(to_unit)).magnitude), power
        except pint.errors.DimensionalityError:
            continue
    raise pint.errors.DimensionalityError(from_unit, to_unit)


def convert(
    values: np.ndarray,
    from_unit: str | None,
    to_unit: str | None,
    slot_hours: np.ndarray,
    field: str,
) -> np.ndarray:
    """Convert values per slot from ``from_unit`` to ``to_unit``.

    Besides plain conversions (MW -> kW, EUR/MWh -> EUR/kWh), a rate becomes an
    amount per slot by multiplying with the slot duration (kW -> kWh) and back
    (kWh -> kW). A missing unit on either side means no conversion.
    """
    if not from_unit or not to_unit or from_unit == to_unit:
        return values
    try:
        factor, power = _flow_factors(from_unit, to_unit)
    except pint.errors.DimensionalityError:
        raise InputError(
            f"cannot convert {from_unit!r} to {to_unit!r} (not even as power x time); "
            f"use a sensor with a unit compatible with {to_unit!r}",
            field,
        ) from None
    return values * factor * slot_hours**power if power else values * factor


@dataclass(frozen=True)
class Grid:
    """Evaluation slots and output bins of one report window (int64 ns, UTC)."""

    slots: np.ndarray
    bins: np.ndarray
    timezone: str

    @classmethod
    def build(
        cls,
        window_start: datetime,
        window_end: datetime,
        resolution: timedelta,
        timezone: str,
        finest_input: timedelta | None,
    ) -> Grid:
        """Build the grid; slots step by ``finest_input`` (capped at the bin length)."""
        bins = output_edges(window_start, window_end, resolution, timezone)
        step = None
        if finest_input is not None and timedelta(0) < finest_input < resolution:
            step = finest_input // timedelta(microseconds=1) * 1000
        return cls(slots=slot_edges(bins, step), bins=bins, timezone=timezone)

    @cached_property
    def slot_index(self) -> pd.DatetimeIndex:
        """Slot starts as a UTC DatetimeIndex named ``event_start``."""
        return pd.DatetimeIndex(
            self.slots[:-1].astype("datetime64[ns]"), name="event_start"
        ).tz_localize("UTC")

    @cached_property
    def bin_index(self) -> pd.DatetimeIndex:
        """Bin starts as a UTC DatetimeIndex named ``event_start``."""
        return pd.DatetimeIndex(
            self.bins[:-1].astype("datetime64[ns]"), name="event_start"
        ).tz_localize("UTC")

    @cached_property
    def slot_hours(self) -> np.ndarray:
        """Duration of each slot in hours."""
        return np.diff(self.slots) / _NS_PER_HOUR

    @cached_property
    def bin_hours(self) -> np.ndarray:
        """Duration of each output bin in hours."""
        return np.diff(self.bins) / _NS_PER_HOUR

    @cached_property
    def first_slot_of_bin(self) -> np.ndarray:
        """Index of the first slot of each bin (slots partition the bins exactly)."""
        return np.searchsorted(self.slots, self.bins[:-1])

    def resample(
        self, starts: np.ndarray, ends: np.ndarray, values: np.ndarray, extensive: bool
    ) -> np.ndarray:
        """Put events (int64 ns starts/ends, float values) onto the slots by time overlap."""
        n = len(self.slots) - 1
        starts = np.asarray(starts, dtype=np.int64)
        ends = np.asarray(ends, dtype=np.int64)
        values = np.asarray(values, dtype=float)
        if len(starts) and (ends == starts).all():
            return self._samples(starts, values)
        keep = (ends > starts) & (ends > self.slots[0]) & (starts < self.slots[-1])
        starts, ends, values = starts[keep], ends[keep], values[keep]
        if not len(starts):
            return np.full(n, np.nan)
        first = np.clip(np.searchsorted(self.slots, starts, side="right") - 1, 0, n - 1)
        last = np.clip(np.searchsorted(self.slots, ends, side="left") - 1, 0, n - 1)
        counts = last - first + 1
        event = np.repeat(np.arange(len(starts)), counts)
        offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        slot = first[event] + offset
        overlap = (
            np.minimum(ends[event], self.slots[slot + 1])
            - np.maximum(starts[event], self.slots[slot])
        ).astype(float)
        val = values[event]
        ok = ~np.isnan(val)
        covered = np.bincount(slot[ok], weights=overlap[ok], minlength=n)
        bad = np.bincount(slot[~ok], weights=overlap[~ok], minlength=n) > 0
        if extensive:
            duration = (ends - starts).astype(float)[event]
            total = np.bincount(slot[ok], weights=(val * overlap / duration)[ok], minlength=n)
        else:
            weighted = np.bincount(slot[ok], weights=(val * overlap)[ok], minlength=n)
            with np.errstate(invalid="ignore", divide="ignore"):
                total = weighted / covered
        complete = (covered >= np.diff(self.slots)) & ~bad
        return np.where(complete, total, np.nan)

    def _samples(self, times: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Mean of instantaneous samples per slot (NaN when a slot has none)."""
        n = len(self.slots) - 1
        inside = (times >= self.slots[0]) & (times < self.slots[-1]) & ~np.isnan(values)
        slot = np.searchsorted(self.slots, times[inside], side="right") - 1
        count = np.bincount(slot, minlength=n)
        total = np.bincount(slot, weights=values[inside], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / count, np.nan)

    def to_bins(self, values: np.ndarray, extensive: bool) -> np.ndarray:
        """Aggregate slot values onto the output bins (NaN when any slot of a bin is NaN)."""
        idx = self.first_slot_of_bin
        if extensive:
            return np.add.reduceat(values, idx)
        weighted = np.add.reduceat(values * self.slot_hours, idx)
        return weighted / self.bin_hours

    def complete_bins(self, values: np.ndarray) -> np.ndarray:
        """Boolean per bin: every slot of the bin has a value."""
        return np.logical_and.reduceat(~np.isnan(values), self.first_slot_of_bin)
