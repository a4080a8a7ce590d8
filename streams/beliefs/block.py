"""One sensor's beliefs of one source over a block of time, and its persisted pages.

A :class:`Block` holds three aligned arrays sorted by event start (event
starts, belief times, values) for one UTC day (one hour for resolutions under
10 s and for instantaneous sensors); :class:`~streams.beliefs.state.BeliefState`
keeps one per sensor, source and span and merges updates into them in place.

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
"""

from __future__ import annotations

import functools
import json
import struct
from dataclasses import dataclass

import numpy as np

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
