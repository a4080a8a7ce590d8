"""The rolling belief state: for each (sensor, event_start) the most recent belief per source.

Kept in a faust table backed by a changelog topic (RocksDB through rocksdict
where available), so a restarted worker recovers it. Keys are one sensor-day
bucket (``"<sensor>|<UTC day number>"``), values map event starts (microseconds
since the epoch, as strings) to ``{source: [belief_time_us, value]}`` plus the
bucket's event resolution, so a batch of readings updates one key per sensor
and day. Out-of-order and late beliefs are ordered by belief time, not arrival.
Only events within ``past`` before and ``future`` after the clock are kept;
older buckets are dropped as time goes on. The history stays in ClickHouse.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from schemas.beliefs import BeliefColumns

_US = 1_000_000
DAY_US = 86_400 * _US
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(t: datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (t - _EPOCH) // timedelta(microseconds=1)


def from_us(us: int) -> datetime:
    """Aware UTC datetime of microseconds since the epoch."""
    return _EPOCH + timedelta(microseconds=int(us))


class BeliefState:
    """Most recent belief per (sensor, event_start, source) over a rolling window."""

    def __init__(
        self,
        table: MutableMapping[str, Any],
        clock: Callable[[], datetime],
        past: timedelta = timedelta(days=7),
        future: timedelta = timedelta(days=7),
        write_context: Callable[[str], contextlib.AbstractContextManager] | None = None,
        read_context: Callable[[], contextlib.AbstractContextManager] | None = None,
    ) -> None:
        self.table = table
        self.write_context = write_context or (lambda sensor: contextlib.nullcontext())
        self.read_context = read_context or contextlib.nullcontext
        self.clock = clock
        self.past = past
        self.future = future
        self._last_expiry = -1

    @staticmethod
    def key(sensor: str, day: int) -> str:
        """Table key of one sensor-day bucket."""
        return f"{sensor}|{day}"

    def update(self, cols: BeliefColumns) -> dict[str, tuple[int, int]]:
        """Merge validated beliefs; return, per sensor, the event span (us) that changed."""
        now = to_us(self.clock())
        lo_keep = now - self.past // timedelta(microseconds=1)
        hi_keep = now + self.future // timedelta(microseconds=1)
        changed: dict[str, tuple[int, int]] = {}
        buckets: dict[str, dict] = {}
        for i, sensor in enumerate(cols.sensor):
            starts = cols.event_start_us[i]
            keep = (starts >= lo_keep) & (starts <= hi_keep)
            if not keep.any():
                continue
            starts = starts[keep]
            bts = cols.belief_time_us[i][keep]
            vals = cols.event_value[i][keep]
            res_s = int(cols.event_resolution_s[i][0]) if len(cols.event_resolution_s[i]) else 0
            cp = cols.cumulative_probability[i]
            if len(cp) and float(cp[0]) != 0.5:
                continue  # the state holds deterministic beliefs; quantiles stay in ClickHouse
            source = cols.source[i]
            days = starts // DAY_US
            any_change = False
            for day in np.unique(days):
                k = self.key(sensor, int(day))
                bucket = buckets.get(k)
                if bucket is None:
                    with self.write_context(sensor):
                        bucket = self.table.get(k) or {"r": res_s, "e": {}}
                    bucket = {"r": bucket["r"], "e": dict(bucket["e"])}
                    buckets[k] = bucket
                events = bucket["e"]
                sel = days == day
                for s, bt, v in zip(
                    starts[sel].tolist(), bts[sel].tolist(), vals[sel].tolist(), strict=True
                ):
                    ev = events.get(str(s))
                    old = ev.get(source) if ev else None
                    if old is not None and old[0] > bt:
                        continue  # an older belief arriving late does not replace a newer one
                    ev = dict(ev) if ev else {}
                    ev[source] = [bt, v]
                    events[str(s)] = ev
                    any_change = True
            if any_change:
                lo, hi = int(starts.min()), int(starts.max()) + res_s * _US
                prev = changed.get(sensor)
                changed[sensor] = (min(lo, prev[0]), max(hi, prev[1])) if prev else (lo, hi)
        for k, bucket in buckets.items():
            with self.write_context(k.rsplit("|", 1)[0]):
                self.table[k] = bucket
        self._expire(now)
        return changed

    def _expire(self, now_us: int) -> None:
        """Drop buckets that fell out of the window (at most once per day number)."""
        oldest_day = (now_us - self.past // timedelta(microseconds=1)) // DAY_US - 1
        if oldest_day <= self._last_expiry:
            return
        self._last_expiry = oldest_day
        for k in [k for k in list(self.table.keys()) if int(k.rsplit("|", 1)[1]) < oldest_day]:
            with self.write_context(k.rsplit("|", 1)[0]):
                del self.table[k]

    def _events(self, sensor: str, start_us: int, end_us: int) -> tuple[list[int], list, int]:
        out_t: list[int] = []
        out_v: list = []
        res = 0
        for day in range(start_us // DAY_US - 1, end_us // DAY_US + 1):
            with self.read_context():
                bucket = self.table.get(self.key(sensor, day))
            if not bucket:
                continue
            res = bucket["r"]
            for s, per_source in bucket["e"].items():
                t = int(s)
                if start_us - res * _US < t < end_us or (res == 0 and t < end_us):
                    out_t.append(t)
                    out_v.append(per_source)
        return out_t, out_v, res

    def series(
        self, sensor: str, start: datetime, end: datetime, source: str | None = None
    ) -> pd.Series:
        """Current values of ``sensor`` for events overlapping [start, end).

        Per event: the given source's most recent belief, or without a source the
        most recent belief of any source. For instantaneous sensors, every event
        before ``end``. The Series is indexed by aware UTC event start, sorted,
        with ``attrs["resolution"]`` (a timedelta).
        """
        times, per_source, res = self._events(sensor, to_us(start), to_us(end))
        idx, vals = [], []
        for t, ps in zip(times, per_source, strict=True):
            if source is not None:
                if source not in ps:
                    continue
                vals.append(ps[source][1])
            else:
                vals.append(max(ps.values(), key=lambda bv: bv[0])[1])
            idx.append(t)
        order = np.argsort(idx, kind="stable")
        index = pd.DatetimeIndex(
            pd.to_datetime(np.asarray(idx, dtype=np.int64)[order], unit="us", utc=True),
            name="event_start",
        )
        out = pd.Series(np.asarray(vals, dtype=float)[order], index=index, name=sensor)
        out.attrs["resolution"] = timedelta(seconds=res)
        return out

    def latest_at(self, sensor: str, at: datetime) -> tuple[datetime, float] | None:
        """The most recent event at or before ``at`` and its current value, if any."""
        s = self.series(sensor, at - self.past, at + timedelta(microseconds=1))
        s = s[s.index <= at]
        if s.empty:
            return None
        return s.index[-1].to_pydatetime(), float(s.iloc[-1])


def install(ctx: Any) -> None:
    """Keep the belief state in a changelog-backed faust table, fed by every stored belief."""
    import weakref

    import faust
    from faust.streams import _current_event

    w = ctx.settings.worker
    table = ctx.app.Table(
        "belief-state",
        default=None,
        partitions=ctx.readings_partitions,
        schema=faust.Schema(key_serializer="json", value_serializer="json"),
    )

    @contextlib.contextmanager
    def as_event_of(sensor: str) -> Iterator[None]:
        """Write a sensor's bucket as part of the message that carried the sensor's beliefs.

        So its changelog partition (and RocksDB partition) is that message's partition:
        a sensor's state lives with the readings partition its messages are keyed to.
        """
        events = ctx.extra.get("batch_events") or {}
        event = events.get(sensor) or next(iter(events.values()), None)
        token = _current_event.set(weakref.ref(event) if event is not None else None)
        try:
            yield
        finally:
            _current_event.reset(token)

    @contextlib.contextmanager
    def outside_events() -> Iterator[None]:
        """Read from every partition, whichever agent asks."""
        token = _current_event.set(None)
        try:
            yield
        finally:
            _current_event.reset(token)

    state = BeliefState(
        table,
        ctx.clock,
        past=w.state_past,
        future=w.state_future,
        write_context=as_event_of,
        read_context=outside_events,
    )
    ctx.extra["belief_state"] = state
    ctx.extra["belief_changes"] = []

    async def on_beliefs(cols: BeliefColumns) -> None:
        changed = state.update(cols)
        if changed:
            for listener in ctx.extra["belief_changes"]:
                await listener(changed)

    ctx.belief_hooks.append(on_beliefs)
