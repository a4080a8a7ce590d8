"""Vectorised building blocks for long inputs: many datetimes, many segments.

A year of quarter-hours is 35,040 segments; reading them one Python object at
a time costs more than solving the schedule. The functions here work on whole
arrays (numpy, pandas) and keep the exact semantics of the per-item readers in
``schemas.flex_series``:

- ``instants_us`` reads ISO 8601 datetimes of the strict form
  ``YYYY-MM-DDTHH:MM[:SS[.ffffff]](Z|+HH:MM)`` in one pandas call, as
  microseconds since an origin; any other text gives ``None`` and the caller
  reads the values one by one (which also words the error for the field).
- ``paint`` spreads segments ``[lo, hi)`` (microseconds from the window's
  start) over the steps whose start they cover, settling overlaps as the
  per-segment loop would: the first listed non-``nan`` value, or the minimum
  or maximum of the values listed after the last ``nan`` (a ``nan`` value
  clears what came before it, as ``np.minimum`` does).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd

from schemas.times import to_us

# Datetimes that pandas and ``datetime.fromisoformat`` read alike (both refuse or
# both accept the same calendar fields); one per line of the joined text.
_STRICT_INSTANTS = re.compile(
    r"(?:\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d{1,6})?)?(?:Z|[+-]\d\d:\d\d)(?:\n|\Z))+"
)

# Segments expanded at once; longer lists are painted in chunks of this many steps.
_CHUNK = 1 << 20


def instants_us(texts: list[object], origin: datetime) -> np.ndarray | None:
    """Microseconds from ``origin`` to each strict ISO 8601 text, or ``None``.

    ``None`` when any item is not a string of the strict form (the caller then
    reads the items one by one, with its own messages).
    """
    if not texts:
        return np.zeros(0, dtype=np.int64)
    try:
        joined = "\n".join(texts)  # type: ignore[arg-type]
    except TypeError:
        return None
    if joined.count("\n") != len(texts) - 1 or not _STRICT_INSTANTS.fullmatch(joined):
        return None
    try:
        index = pd.to_datetime(texts, format="ISO8601", utc=True)
        us = np.asarray(index.as_unit("us").asi8, dtype=np.int64)
    except (ValueError, OverflowError, pd.errors.OutOfBoundsDatetime):
        return None
    return us - to_us(origin)


def first_step_at_or_after(offset_us: np.ndarray, res_us: int) -> np.ndarray:
    """Index of the first step whose start lies at or after each offset."""
    return -(-offset_us // res_us)


def paint(
    lo_us: np.ndarray,
    hi_us: np.ndarray,
    values: np.ndarray,
    n: int,
    res_us: int,
    overlap: str = "first",
) -> np.ndarray:
    """One value per step (``nan`` where no segment applies) from segments ``[lo, hi)``.

    Step ``k`` starts ``k * res_us`` microseconds after the window's start; a
    segment applies to the steps whose start lies in ``[lo, hi)``. ``overlap``:
    ``"first"`` (the first segment listed), ``"min"`` or ``"max"``.
    """
    values = np.asarray(values, dtype=float)
    k_lo = np.clip(first_step_at_or_after(np.asarray(lo_us, dtype=np.int64), res_us), 0, n)
    k_hi = np.clip(first_step_at_or_after(np.asarray(hi_us, dtype=np.int64), res_us), 0, n)
    lens = np.maximum(k_hi - k_lo, 0)
    is_nan = np.isnan(values)
    out = np.full(n, np.nan)
    if overlap == "first":
        # The first non-nan segment listed wins: a minimum of segment numbers per step.
        keep = ~is_nan
        winner = np.full(n, len(values), dtype=np.int64)
        for steps, seg in _expand(k_lo[keep], lens[keep], np.flatnonzero(keep)):
            np.minimum.at(winner, steps, seg)
        hit = winner < len(values)
        out[hit] = values[winner[hit]]
        return out
    if overlap not in ("min", "max"):
        raise ValueError(f"overlap must be 'first', 'min' or 'max', got {overlap!r}")
    combine = np.fmin if overlap == "min" else np.fmax
    last_nan = np.full(n, -1, dtype=np.int64)
    if is_nan.any():
        for steps, seg in _expand(k_lo[is_nan], lens[is_nan], np.flatnonzero(is_nan)):
            np.maximum.at(last_nan, steps, seg)
    segs = np.arange(len(values))
    for steps, seg in _expand(k_lo, lens, segs):
        later = seg > last_nan[steps]
        combine.at(out, steps[later], values[seg[later]])
    return out


def _expand(
    k_lo: np.ndarray, lens: np.ndarray, segs: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (step, segment) index pairs for every step each segment covers, in chunks."""
    if not len(segs):
        return
    ends = np.cumsum(lens)
    start = 0
    while start < len(segs):
        done = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, done + _CHUNK, side="right"))
        stop = max(stop, start + 1)
        ln = lens[start:stop]
        total = int(ln.sum())
        if total:
            seg = np.repeat(segs[start:stop], ln)
            first = np.repeat(k_lo[start:stop] - (np.cumsum(ln) - ln), ln)
            yield first + np.arange(total), seg
        start = stop
