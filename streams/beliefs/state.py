"""The rolling belief state: for each (sensor, event_start) the most recent belief per source.

Working structure (the read path, in memory): per sensor and source, the events
are held in blocks of one UTC day (one hour for resolutions under 10 s and for
instantaneous sensors), each a :class:`Block` of three aligned arrays sorted by
event start (event starts, belief times, values). An update merges a batch into
its blocks in place: new events are inserted, a known event takes the new belief
only if its belief time is not older than the one held, so late and out-of-order
beliefs are ordered by belief time, not arrival.

Persisted form: a block is stored in pages, one key per page,
``(sensor, source, page start in seconds)``, whose value is the page's compact
binary encoding (:meth:`Block.encode`: a header, the event starts as first and
step when evenly spaced, one belief time when all are equal, and 8 bytes per
value). A page spans a UTC day from 15-minute resolutions on, an hour from one
minute on, and a minute below (and for instantaneous sensors), so it holds at
most about a hundred events at a steady pace (a day of 15-minute values from one
belief time is 810 bytes). After each update only the pages it changed are
written, once each: a live reading rewrites one small page, a batch rewrites
the pages it covers. Pages of blocks that fall out of the window are deleted.
In the worker the keys live in a changelog-backed faust table (RocksDB through
rocksdict where available), and a restarted worker rebuilds the working
structure from it (:meth:`BeliefState.restore`).

Only events within ``past`` before and ``future`` after the clock are kept; the
history stays in ClickHouse. The state holds deterministic beliefs (cumulative
probability 0.5); quantiles stay in ClickHouse only.
"""

from __future__ import annotations

import functools
import json
import logging
import struct
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from schemas.beliefs import BeliefColumns
from schemas.times import to_us

log = logging.getLogger("flexstream.belief_state")

_US = 1_000_000
MINUTE_S = 60
HOUR_S = 3_600
DAY_S = 86_400
DAY_US = DAY_S * _US

#: Resolutions (seconds) from which a block spans a UTC day rather than an hour.
DAY_BLOCKS_FROM_S = 10


#: Key of one page in the persisted form: (sensor, source, page start in seconds).
PageKey = tuple[str, str, int]

#: Header of an encoded page: format version, flags, block span, page span,
#: resolution (seconds each), number of events.
_HEADER = struct.Struct("<BBIIII")
_FORMAT = 1
#: Flags: the event starts are evenly spaced (stored as first start and step);
#: every event has the same belief time (stored once).
_EVEN_STARTS = 1
_ONE_BELIEF_TIME = 2
_I8 = struct.Struct("<q")
_I8x2 = struct.Struct("<qq")
_ONE_EVENT = struct.Struct("<BBIIIIqqqd")  # header, first start, step, belief time, value

#: The faust table holding the persisted form in the worker.
TABLE = "belief-pages"


def block_span_s(resolution_s: int) -> int:
    """Seconds a block spans for events of ``resolution_s``: a UTC day, or an hour if fine."""
    return DAY_S if resolution_s >= DAY_BLOCKS_FROM_S else HOUR_S


def page_span_s(resolution_s: int) -> int:
    """Seconds a persisted page spans for events of ``resolution_s``.

    A day from 15 minutes on, an hour from a minute on, else a minute (and for
    instantaneous sensors): a page holds at most 96 events at a steady pace.
    """
    if resolution_s >= 15 * MINUTE_S:
        return DAY_S
    return HOUR_S if resolution_s >= MINUTE_S else MINUTE_S


@dataclass(slots=True)
class Block:
    """One sensor's beliefs of one source for the events of one block span.

    ``starts`` is sorted and unique; ``belief_times`` and ``values`` are aligned
    with it. ``resolution_s`` is the event resolution (0: instantaneous),
    ``span_s`` the length of the span the block covers from its start, and
    ``page_s`` the span of the pages it is persisted in.
    """

    span_s: int
    page_s: int
    resolution_s: int
    starts: np.ndarray
    belief_times: np.ndarray
    values: np.ndarray

    @classmethod
    def empty(cls, resolution_s: int) -> Block:
        """A block without events, with the spans that suit ``resolution_s``."""
        return cls(
            block_span_s(resolution_s),
            page_span_s(resolution_s),
            resolution_s,
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty(0, np.float64),
        )

    def __len__(self) -> int:
        return len(self.starts)

    def merge(
        self, starts: np.ndarray, belief_times: np.ndarray, values: np.ndarray
    ) -> np.ndarray | None:
        """Merge beliefs for sorted, unique ``starts``; return which of them were applied.

        A belief is applied to a new event, or to a known one whose held belief is
        not newer (an equal belief time replaces: the later arrival wins). Returns
        None when all were applied.
        """
        n_old = len(self.starts)
        if n_old == 0 or starts[0] > self.starts[-1]:
            # Nothing held, or every event is new and later (the usual live case).
            self.starts = np.concatenate((self.starts, starts))
            self.belief_times = np.concatenate((self.belief_times, belief_times))
            self.values = np.concatenate((self.values, values))
            return None
        pos = np.searchsorted(self.starts, starts)
        inside = pos < n_old
        hit = np.zeros(len(starts), dtype=bool)
        hit[inside] = self.starts[pos[inside]] == starts[inside]
        applied = ~hit
        if hit.any():
            at = pos[hit]
            newer = belief_times[hit] >= self.belief_times[at]
            applied[hit] = newer
            at = at[newer]
            self.belief_times[at] = belief_times[hit][newer]
            self.values[at] = values[hit][newer]
        new = ~hit
        if new.any():
            at = pos[new]
            self.starts = np.insert(self.starts, at, starts[new])
            self.belief_times = np.insert(self.belief_times, at, belief_times[new])
            self.values = np.insert(self.values, at, values[new])
        return applied

    def page_keys(self) -> list[int]:
        """Starts (seconds) of the pages that hold this block's events."""
        page_us = self.page_s * _US
        return (np.unique(self.starts // page_us) * self.page_s).tolist()

    def encode(self, page_start_s: int) -> bytes:
        """Compact binary form of one page (little-endian).

        The header, then the event starts (the first and the step if evenly
        spaced, else all), the belief times (one if all equal, else all) and the
        values: 8 bytes per event plus a few dozen for a series of one belief time.
        """
        lo_us = page_start_s * _US
        lo, hi = np.searchsorted(self.starts, (lo_us, lo_us + self.page_s * _US)).tolist()
        n = hi - lo
        head = (_FORMAT, self.span_s, self.page_s, self.resolution_s, n)
        if n == 1:
            flags = _EVEN_STARTS | _ONE_BELIEF_TIME
            return _ONE_EVENT.pack(
                head[0], flags, *head[1:], int(self.starts[lo]), 0,
                int(self.belief_times[lo]), float(self.values[lo]),
            )  # fmt: skip
        starts, bts = self.starts[lo:hi], self.belief_times[lo:hi]
        flags = 0
        steps = starts[1:] - starts[:-1]
        if n and (steps == steps[0]).all():
            flags |= _EVEN_STARTS
            starts_b = _I8x2.pack(int(starts[0]), int(steps[0]))
        else:
            starts_b = starts.astype("<i8", copy=False).tobytes()
        if n and (bts == bts[0]).all():
            flags |= _ONE_BELIEF_TIME
            bts_b = _I8.pack(int(bts[0]))
        else:
            bts_b = bts.astype("<i8", copy=False).tobytes()
        return b"".join(
            (
                _HEADER.pack(head[0], flags, *head[1:]),
                starts_b,
                bts_b,
                self.values[lo:hi].astype("<f8", copy=False).tobytes(),
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> Block:
        """The block of one page's bytes (its events alone; arrays are writable)."""
        version, flags, span, page, res, n = _HEADER.unpack_from(data)
        if version != _FORMAT:
            raise ValueError(f"unknown belief-state page format {version}")
        off = _HEADER.size
        size = off + 8 * n
        size += 16 if flags & _EVEN_STARTS else 8 * n
        size += 8 if flags & _ONE_BELIEF_TIME else 8 * n
        if len(data) != size:
            raise ValueError(f"a belief-state page of {n} events has {len(data)} bytes")
        if flags & _EVEN_STARTS:
            first, step = _I8x2.unpack_from(data, off)
            starts = first + step * np.arange(n, dtype=np.int64)
            off += 16
        else:
            starts = np.frombuffer(data, "<i8", n, off).astype(np.int64)
            off += 8 * n
        if flags & _ONE_BELIEF_TIME:
            bts = np.full(n, _I8.unpack_from(data, off)[0], dtype=np.int64)
            off += 8
        else:
            bts = np.frombuffer(data, "<i8", n, off).astype(np.int64)
            off += 8 * n
        values = np.frombuffer(data, "<f8", n, off).astype(np.float64)
        return cls(span, page, res, starts, bts, values)

    @classmethod
    def join(cls, pages: list[Block]) -> Block:
        """One block of the pages of one block span (in any order).

        An event held by several pages (a page copy left in another partition)
        keeps its newest belief.
        """
        first = pages[0]
        if len(pages) == 1:
            return first
        starts = np.concatenate([p.starts for p in pages])
        bts = np.concatenate([p.belief_times for p in pages])
        order = np.lexsort((bts, starts))
        starts, bts = starts[order], bts[order]
        last = np.ones(len(starts), dtype=bool)
        last[:-1] = starts[1:] != starts[:-1]
        values = np.concatenate([p.values for p in pages])[order][last]
        return cls(first.span_s, first.page_s, first.resolution_s, starts[last], bts[last], values)


def encode_key(key: PageKey) -> bytes:
    """Bytes of a page key in the faust table (JSON, readable in the changelog)."""
    return _key_prefix(key[0], key[1]) + b"%d]" % key[2]


@functools.lru_cache(maxsize=65_536)
def _key_prefix(sensor: str, source: str) -> bytes:
    return json.dumps([sensor, source], separators=(",", ":"))[:-1].encode() + b","


def decode_key(data: bytes) -> PageKey:
    """The page key of :func:`encode_key`'s bytes."""
    sensor, source, start_s = json.loads(data)
    return str(sensor), str(source), int(start_s)


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
        self, sensor: str, start: datetime, end: datetime, source: str | None = None
    ) -> pd.Series:
        """Current values of ``sensor`` for events overlapping [start, end).

        Per event: the given source's most recent belief, or without a source the
        most recent belief of any source (between equal belief times, the source
        whose name sorts last). For instantaneous sensors, every event held before
        ``end``. The Series is indexed by aware UTC event start, sorted, with
        ``attrs["resolution"]`` (a timedelta).
        """
        start_us, end_us = to_us(start), to_us(end)
        by_source = self._blocks.get(sensor, {})
        res_td = self.resolution(sensor) or timedelta(0)
        res_us = res_td // timedelta(microseconds=1)
        names = [source] if source is not None else sorted(by_source)
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
