"""The rolling belief state: for each (sensor, event_start) the most recent belief per source.

Working structure (the read path, in memory): per sensor and source, the events
are held in blocks of one UTC day (one hour for resolutions under 10 s and for
instantaneous sensors), each a :class:`Block` of three aligned arrays sorted by
event start (event starts, belief times, values). An update merges a batch into
its blocks in place: new events are inserted, a known event takes the new belief
only if its belief time is not older than the one held, so late and out-of-order
beliefs are ordered by belief time, not arrival.

The blocks and their persisted pages: :mod:`streams.beliefs.block`. In the
worker the pages live in a changelog-backed faust table (RocksDB through
rocksdict where available), and a restarted worker rebuilds the working
structure from it (:meth:`BeliefState.restore`).

Only events within ``past`` before and ``future`` after the clock are kept; the
history stays in ClickHouse. The state holds deterministic beliefs (cumulative
probability 0.5); quantiles stay in ClickHouse only.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Iterator, MutableMapping
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from schemas.beliefs import BeliefColumns
from schemas.times import to_us
from streams.beliefs.block import _US, DAY_BLOCKS_FROM_S, DAY_US, HOUR_S, Block, PageKey

log = logging.getLogger("flexstream.belief_state")


class BeliefState:
    """Most recent belief per (sensor, event_start, source) over a rolling window.

    ``table`` holds the persisted form (page key -> encoded page): a dict in
    tests, the changelog-backed store in the worker
    (:func:`streams.beliefs.agent.changelog_pages`).
    The working structure is rebuilt from it by :meth:`restore`.
    """

    def __init__(
        self,
        table: MutableMapping[PageKey, bytes],
        clock: Callable[[], datetime],
        past: timedelta = timedelta(days=7),
        future: timedelta = timedelta(days=7),
    ) -> None:
        self.table = table
        self.clock = clock
        self.past = past
        self.future = future
        # sensor -> source -> block start (s) -> block
        self._blocks: dict[str, dict[str, dict[int, Block]]] = {}
        self._last_expiry = -1

    def restore(self) -> int:
        """Rebuild the working structure from the persisted form; return the pages loaded."""
        pages: dict[tuple[str, str, int], list[Block]] = {}
        for key, data in list(self.table.items()):
            sensor, source, page_start = key
            try:
                page = Block.decode(data)
            except (ValueError, struct.error) as exc:
                log.warning("belief-state page %s is unreadable (%s); skipped", key, exc)
                continue
            start_s = page_start - page_start % page.span_s
            pages.setdefault((sensor, source, start_s), []).append(page)
        self._blocks = {}
        self._last_expiry = -1
        for (sensor, source, start_s), parts in pages.items():
            block = Block.join(parts)
            self._blocks.setdefault(sensor, {}).setdefault(source, {})[start_s] = block
        return sum(len(p) for p in pages.values())

    def blocks(self) -> Iterator[tuple[tuple[str, str, int], Block]]:
        """Every block of the working structure with its (sensor, source, start in s)."""
        for sensor, by_source in self._blocks.items():
            for source, by_start in by_source.items():
                for start_s, block in by_start.items():
                    yield (sensor, source, start_s), block

    def update(self, cols: BeliefColumns) -> dict[str, tuple[int, int]]:
        """Merge validated beliefs; return, per sensor, the event span (us) that changed.

        The span runs from the first changed event's start to the last changed
        event's end. Each page the update changed is written to the persisted
        form once.
        """
        now = to_us(self.clock())
        changed: dict[str, tuple[int, int]] = {}
        if len(cols.sensor):
            self._merge(cols, now, changed)
        self._expire(now)
        return changed

    def _merge(self, cols: BeliefColumns, now: int, changed: dict[str, tuple[int, int]]) -> None:
        lo_keep = now - self.past // timedelta(microseconds=1)
        hi_keep = now + self.future // timedelta(microseconds=1)
        starts = np.concatenate(cols.event_start_us)
        keep = (starts >= lo_keep) & (starts <= hi_keep)
        if not keep.any():
            return
        keep &= np.concatenate(cols.cumulative_probability) == 0.5
        if not keep.any():
            return
        # One group per (sensor, source), in order of appearance.
        groups: dict[tuple[str, str], int] = {}
        codes = [
            groups.setdefault(k, len(groups)) for k in zip(cols.sensor, cols.source, strict=True)
        ]
        counts = np.asarray(cols.counts, dtype=np.int64)
        group = np.repeat(np.asarray(codes, dtype=np.int64), counts)[keep]
        starts = starts[keep]
        bts = np.concatenate(cols.belief_time_us)[keep]
        vals = np.concatenate(cols.event_value)[keep].astype(np.float64, copy=False)
        res = np.concatenate(cols.event_resolution_s)[keep].astype(np.int64, copy=False)
        # Sorted by group, event start, belief time; a stable sort keeps the arrival
        # order among equal belief times, so the later arrival wins. Group and start
        # make one sort key where they fit in 63 bits.
        width = hi_keep - lo_keep + 1
        if len(groups) < (1 << 62) // width:
            key = group * width + (starts - lo_keep)
            order = np.lexsort((bts, key))
            key = key[order]
            new_key = key[1:] != key[:-1]
        else:
            order = np.lexsort((bts, starts, group))
            g, t = group[order], starts[order]
            new_key = (t[1:] != t[:-1]) | (g[1:] != g[:-1])
        # Per (group, event start) the last row holds the newest belief: keep that one.
        last = np.ones(len(order), dtype=bool)
        last[:-1] = new_key
        pick = order[last]
        group, starts, bts, vals, res = (a[pick] for a in (group, starts, bts, vals, res))
        span_us = np.where(res >= DAY_BLOCKS_FROM_S, DAY_US, HOUR_S * _US)
        block_us = starts - starts % span_us
        # Segments of one block each: one (group, block start).
        edges = np.flatnonzero((group[1:] != group[:-1]) | (block_us[1:] != block_us[:-1])) + 1
        firsts = np.concatenate(([0], edges))
        ends = np.concatenate((edges, [len(starts)]))
        keys = list(groups)
        dirty: dict[PageKey, Block] = {}
        for lo, hi, g, b_us, res_s in zip(
            firsts.tolist(),
            ends.tolist(),
            group[firsts].tolist(),
            block_us[firsts].tolist(),
            res[ends - 1].tolist(),
            strict=True,
        ):
            sensor, source = keys[g]
            s = starts[lo:hi]
            by_start = self._blocks.setdefault(sensor, {}).setdefault(source, {})
            block = by_start.get(b_us // _US)
            if block is None:
                block = by_start[b_us // _US] = Block.empty(res_s)
            block.resolution_s = res_s
            applied = block.merge(s, bts[lo:hi], vals[lo:hi])
            done = s if applied is None else s[applied]
            if not len(done):
                continue
            first, end = int(done[0]), int(done[-1])
            page_us = block.page_s * _US
            if first // page_us == end // page_us:
                dirty[(sensor, source, first // page_us * block.page_s)] = block
            else:
                for p in np.unique(done // page_us).tolist():
                    dirty[(sensor, source, p * block.page_s)] = block
            end += res_s * _US
            prev = changed.get(sensor)
            changed[sensor] = (min(first, prev[0]), max(end, prev[1])) if prev else (first, end)
        for key, block in dirty.items():
            self.table[key] = block.encode(key[2])

    def _expire(self, now_us: int) -> None:
        """Drop blocks whose span ended before the window (checked once per hour)."""
        lo_keep_s = (now_us - self.past // timedelta(microseconds=1)) // _US
        hour = lo_keep_s // HOUR_S
        if hour <= self._last_expiry:
            return
        self._last_expiry = hour
        for sensor, by_source in list(self._blocks.items()):
            for source, by_start in list(by_source.items()):
                for start_s in [t for t, b in by_start.items() if t + b.span_s <= lo_keep_s]:
                    for page in by_start.pop(start_s).page_keys():
                        self.table.pop((sensor, source, page), None)
                if not by_start:
                    del by_source[source]
            if not by_source:
                del self._blocks[sensor]

    def resolution(self, sensor: str) -> timedelta | None:
        """The event resolution of ``sensor`` as the state holds it, or None if unknown."""
        for by_start in self._blocks.get(sensor, {}).values():
            for block in by_start.values():
                return timedelta(seconds=block.resolution_s)
        return None

    def series(
        self,
        sensor: str,
        start: datetime,
        end: datetime,
        source: str | None = None,
        exclude_prefix: str | None = None,
    ) -> pd.Series:
        """Current values of ``sensor`` for events overlapping [start, end).

        Per event: the given source's most recent belief, or without a source the
        most recent belief of any source (between equal belief times, the source
        whose name sorts last), leaving out sources that start with
        ``exclude_prefix`` (e.g. forecasters'). For instantaneous sensors, every event held before
        ``end``. The Series is indexed by aware UTC event start, sorted, with
        ``attrs["resolution"]`` (a timedelta).
        """
        start_us, end_us = to_us(start), to_us(end)
        by_source = self._blocks.get(sensor, {})
        res_td = self.resolution(sensor) or timedelta(0)
        res_us = res_td // timedelta(microseconds=1)
        names = [source] if source is not None else sorted(by_source)
        if exclude_prefix:
            names = [n for n in names if not n.startswith(exclude_prefix)]
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for name in names:
            for start_s, block in sorted(by_source.get(name, {}).items()):
                if start_s * _US >= end_us:
                    continue
                if res_us and (start_s + block.span_s) * _US <= start_us - res_us:
                    continue
                t = block.starts
                sel = (t < end_us) & (t > start_us - res_us) if res_us else t < end_us
                if sel.all():
                    parts.append((t, block.belief_times, block.values))
                elif sel.any():
                    parts.append((t[sel], block.belief_times[sel], block.values[sel]))
        if parts:
            t = np.concatenate([p[0] for p in parts])
            v = np.concatenate([p[2] for p in parts])
            if len(parts) > 1 and not (t[1:] > t[:-1]).all():
                # Several sources (or blocks of another span) hold the same events.
                order = np.lexsort((np.concatenate([p[1] for p in parts]), t))
                t, v = t[order], v[order]
                last = np.ones(len(t), dtype=bool)
                last[:-1] = t[1:] != t[:-1]
                t, v = t[last], v[last]
        else:
            t, v = np.empty(0, np.int64), np.empty(0, np.float64)
        index = pd.DatetimeIndex(pd.to_datetime(t, unit="us", utc=True), name="event_start")
        out = pd.Series(v, index=index, name=sensor, dtype=float, copy=True)
        out.attrs["resolution"] = res_td
        return out

    def latest_at(self, sensor: str, at: datetime) -> tuple[datetime, float] | None:
        """The most recent event at or before ``at`` and its current value, if any."""
        s = self.series(sensor, at - self.past, at + timedelta(microseconds=1))
        s = s[s.index <= at]
        if s.empty:
            return None
        return s.index[-1].to_pydatetime(), float(s.iloc[-1])
