"""Event-time windows of a streaming report: watermarks, grace, timeout, late corrections.

Pure (no I/O; the clock is passed in), so tests move time by hand.

- Windows tile time: a fixed window (``PT1H``) steps from an anchor (the
  report's ``start``, else the Unix epoch); a window of whole days is a run of
  calendar days in the report timezone (so a daily window is 23 or 25 hours
  around DST).
- The *watermark* of an input is the latest event end seen for it.
- A window with new input is *pending*. It is *due* (closes) when every
  input's watermark has passed ``window end + grace``, or, when it has had no
  new input for ``timeout`` of processing time, as soon as one input's
  watermark has passed ``window end + grace`` (so a dead input does not block
  the report forever).
- After a window is computed it is no longer pending. A belief that arrives
  for it later (a late input, a correction) makes it pending again, and since
  watermarks only grow it is due at once: the caller recomputes it and emits
  the result as a newer belief. Nothing is dropped silently.

:meth:`ReportWindows.to_state` and :meth:`ReportWindows.from_state` turn the
state into JSON-able data and back, so the worker can keep it in a
changelog-backed table and a restarted worker continues where it was (see
:mod:`streams.reports.agent`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from schemas.times import US as _US
from schemas.times import from_us, to_us
from streams.reports.reporters.grid import is_calendar

_EPOCH_DATE = date(1970, 1, 1)


@dataclass(frozen=True)
class WindowSpec:
    """How a report tiles time into windows."""

    window: timedelta
    timezone: str = "UTC"
    anchor: datetime | None = None

    @property
    def calendar(self) -> bool:
        """True for windows of whole local days."""
        return is_calendar(self.window)

    @property
    def _days(self) -> int:
        return self.window // timedelta(days=1)

    def _anchor_day(self) -> int:
        if self.anchor is None:
            return 0
        local = self.anchor.astimezone(ZoneInfo(self.timezone)).date()
        return (local - _EPOCH_DATE).days

    def index_of(self, t_us: np.ndarray) -> np.ndarray:
        """Index of the window holding each time (int64 us since the epoch)."""
        t_us = np.asarray(t_us, dtype=np.int64)
        if not self.calendar:
            anchor = to_us(self.anchor) if self.anchor else 0
            return (t_us - anchor) // (self.window // _US)
        local = pd.to_datetime(t_us, unit="us", utc=True).tz_convert(self.timezone)
        days = (local.tz_localize(None).normalize() - pd.Timestamp("1970-01-01")).days
        return (np.asarray(days, dtype=np.int64) - self._anchor_day()) // self._days

    def bounds(self, index: int) -> tuple[int, int]:
        """Start and end (us) of window ``index``."""
        index = int(index)
        if not self.calendar:
            anchor = to_us(self.anchor) if self.anchor else 0
            w = self.window // _US
            return anchor + index * w, anchor + (index + 1) * w
        tz = ZoneInfo(self.timezone)
        first = _EPOCH_DATE + timedelta(days=self._anchor_day() + index * self._days)
        last = first + timedelta(days=self._days)
        return (
            to_us(datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)),
            to_us(datetime.combine(last, time(0), tzinfo=tz).astimezone(UTC)),
        )

    def overlapping(self, starts_us: np.ndarray, ends_us: np.ndarray) -> np.ndarray:
        """Indices of the windows that events ``[start, end)`` overlap (sorted, unique).

        An instantaneous event (end == start) belongs to the window holding it.
        """
        starts_us = np.asarray(starts_us, dtype=np.int64)
        if not len(starts_us):
            return np.empty(0, dtype=np.int64)
        last_us = np.maximum(np.asarray(ends_us, dtype=np.int64) - 1, starts_us)
        first, last = self.index_of(starts_us), self.index_of(last_us)
        out = [np.unique(first)]
        wide = last > first
        for a, b in set(zip(first[wide].tolist(), last[wide].tolist(), strict=True)):
            out.append(np.arange(a, b + 1, dtype=np.int64))
        return np.unique(np.concatenate(out))

    def between(self, start: datetime, end: datetime) -> list[int]:
        """Indices of the windows tiling ``[start, end)``; both must be window bounds."""
        a = int(self.index_of(np.array([to_us(start)]))[0])
        b = int(self.index_of(np.array([to_us(end) - 1]))[0])
        if self.bounds(a)[0] != to_us(start):
            raise ValueError("start")
        if self.bounds(b)[1] != to_us(end):
            raise ValueError("end")
        return list(range(a, b + 1))


@dataclass
class WindowState:
    """What is known about one window."""

    start_us: int
    end_us: int
    pending: bool = True
    version: int = 0
    last_input: datetime | None = None
    computed: int = 0
    last_belief_time: datetime | None = None

    def to_state(self) -> list:
        """JSON-able form: ``[start, end, pending, version, last_input, computed, last_bt]``.

        Times are microseconds since the epoch (or None).
        """
        return [
            self.start_us,
            self.end_us,
            self.pending,
            self.version,
            None if self.last_input is None else to_us(self.last_input),
            self.computed,
            None if self.last_belief_time is None else to_us(self.last_belief_time),
        ]

    @classmethod
    def from_state(cls, state: list) -> WindowState:
        """The window of :meth:`to_state`'s output."""
        start_us, end_us, pending, version, last_input, computed, last_bt = state
        return cls(
            int(start_us),
            int(end_us),
            bool(pending),
            int(version),
            None if last_input is None else from_us(last_input),
            int(computed),
            None if last_bt is None else from_us(last_bt),
        )


@dataclass
class ReportWindows:
    """Watermarks per input and the state of each window of one report."""

    spec: WindowSpec
    aliases: tuple[str, ...]
    grace: timedelta
    timeout: timedelta
    start: datetime | None = None
    end: datetime | None = None
    keep: timedelta = timedelta(days=7)
    watermarks: dict[str, int] = field(default_factory=dict)
    windows: dict[int, WindowState] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)
    late: int = 0

    def to_state(self) -> dict:
        """Watermarks, windows and the late count as JSON-able data (see :meth:`from_state`)."""
        return {
            "watermarks": dict(self.watermarks),
            "windows": {str(i): st.to_state() for i, st in self.windows.items()},
            "late": self.late,
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping,
        spec: WindowSpec,
        aliases: tuple[str, ...],
        grace: timedelta,
        timeout: timedelta,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> ReportWindows:
        """Windows of a report configured as given, continuing from :meth:`to_state`'s output."""
        windows = {int(i): WindowState.from_state(st) for i, st in state["windows"].items()}
        return cls(
            spec,
            aliases,
            grace,
            timeout,
            start=start,
            end=end,
            watermarks={a: int(v) for a, v in state["watermarks"].items()},
            windows=windows,
            pending={i for i, st in windows.items() if st.pending},
            late=int(state.get("late", 0)),
        )

    def observe(
        self, alias: str, starts_us: np.ndarray, ends_us: np.ndarray, now: datetime
    ) -> list[int]:
        """Record new beliefs of one input; return the windows they made pending."""
        if not len(starts_us):
            return []
        wm = int(np.max(ends_us))
        if wm > self.watermarks.get(alias, -(2**62)):
            self.watermarks[alias] = wm
        touched = []
        lo = to_us(self.start) if self.start else None
        hi = to_us(self.end) if self.end else None
        for idx in self.spec.overlapping(starts_us, ends_us).tolist():
            st = self.windows.get(idx)
            if st is None:
                ws, we = self.spec.bounds(idx)
                if (lo is not None and ws < lo) or (hi is not None and we > hi):
                    continue
                st = self.windows[idx] = WindowState(ws, we)
            elif not st.pending and st.computed:
                self.late += 1
            st.pending = True
            st.version += 1
            st.last_input = now
            self.pending.add(idx)
            touched.append(idx)
        return touched

    def passed(self, st: WindowState) -> tuple[bool, bool]:
        """(every input's watermark passed end + grace, at least one did)."""
        limit = st.end_us + self.grace // _US
        marks = [self.watermarks.get(a) for a in self.aliases]
        ok = [m is not None and m >= limit for m in marks]
        return all(ok), any(ok)

    def due(self, now: datetime) -> list[int]:
        """Pending windows that close now (sorted by start)."""
        out = []
        for idx in self.pending:
            st = self.windows[idx]
            every, one = self.passed(st)
            idle = st.last_input is not None and now - st.last_input >= self.timeout
            if every or (one and idle):
                out.append(idx)
        return sorted(out)

    def done(self, idx: int, belief_time: datetime, version: int | None = None) -> None:
        """Mark window ``idx`` computed, its results believed at ``belief_time``.

        With ``version`` (the window's version when its inputs were loaded), a
        window that received input since stays pending, to be computed again.
        """
        st = self.windows[idx]
        st.computed += 1
        st.last_belief_time = belief_time
        if version is None or version == st.version:
            st.pending = False
            self.pending.discard(idx)

    def belief_time(self, idx: int, now: datetime) -> datetime:
        """Belief time for a (re)computation of ``idx``: now, but after any earlier one."""
        prev = self.windows[idx].last_belief_time
        if prev is not None and now <= prev:
            return prev + _US
        return now

    def prune(self) -> int:
        """Forget computed windows that ended ``keep`` before the lowest watermark."""
        if not self.watermarks:
            return 0
        horizon = min(self.watermarks.values()) - self.keep // _US
        old = [i for i, st in self.windows.items() if not st.pending and st.end_us < horizon]
        for i in old:
            del self.windows[i]
        return len(old)
