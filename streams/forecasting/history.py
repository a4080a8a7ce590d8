"""What was known when: a sensor's beliefs, looked up as of a belief time.

A forecast made at time ``T`` may use a belief only if its belief time is at or
before ``T`` (no look-ahead). :class:`BeliefHistory` answers "the value of event
``t`` as believed at ``T``" (the most recent belief with ``belief_time <= T``)
and "the latest event known at ``T``", vectorised over many ``(t, T)`` pairs.

Times are integers: microseconds since 1970-01-01 UTC. Belief times are
compared in whole seconds, rounded *up* (and query times down), so a belief is
never used before it existed, whatever the rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_S = 1_000_000


def _up_s(us: np.ndarray) -> np.ndarray:
    return -((-us) // _S)


@dataclass(frozen=True)
class BeliefHistory:
    """Deterministic beliefs of one sensor, sorted by (event start, belief time)."""

    event_start: np.ndarray  # int64 µs
    belief_time: np.ndarray  # int64 µs
    value: np.ndarray  # float64

    @classmethod
    def from_arrays(cls, event_start: object, belief_time: object, value: object) -> BeliefHistory:
        """Build from unsorted arrays (any order, several beliefs per event allowed)."""
        es = np.asarray(event_start, dtype=np.int64)
        bt = np.asarray(belief_time, dtype=np.int64)
        v = np.asarray(value, dtype=np.float64)
        if not (len(es) == len(bt) == len(v)):
            raise ValueError("event_start, belief_time and value must have one length")
        keep = np.isfinite(v)
        es, bt, v = es[keep], bt[keep], v[keep]
        order = np.lexsort((bt, es))
        return cls(es[order], bt[order], v[order])

    @classmethod
    def empty(cls) -> BeliefHistory:
        """A history without beliefs."""
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))

    def __len__(self) -> int:
        return len(self.value)

    def known_by(self, at_us: int) -> BeliefHistory:
        """Only the beliefs whose belief time is at or before ``at_us``."""
        keep = _up_s(self.belief_time) <= at_us // _S
        return BeliefHistory(self.event_start[keep], self.belief_time[keep], self.value[keep])

    def _keys(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        events, idx = np.unique(self.event_start, return_inverse=True)
        bt_s = _up_s(self.belief_time)
        lo = int(bt_s.min())
        span = int(bt_s.max()) - lo + 2
        return events, idx.astype(np.int64) * span + (bt_s - lo), lo, span

    def as_of(self, event: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Value of each ``event[i]`` as believed at ``at[i]`` (µs); NaN where nothing was."""
        event = np.asarray(event, dtype=np.int64)
        at = np.broadcast_to(np.asarray(at, dtype=np.int64), event.shape)
        out = np.full(event.shape, np.nan)
        if not len(self) or not event.size:
            return out
        events, keys, lo, span = self._keys_cached()
        pos = np.searchsorted(events, event)
        found = (pos < len(events)) & (events[np.minimum(pos, len(events) - 1)] == event)
        at_s = np.clip(at // _S - lo, -1, span - 1)
        q = pos.astype(np.int64) * span + at_s
        hit = np.searchsorted(keys, q, side="right") - 1
        ok = found & (at_s >= 0) & (hit >= 0)
        ok[ok] &= keys[hit[ok]] // span == pos[ok]
        out[ok] = self.value[hit[ok]]
        return out

    def _keys_cached(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = self._keys()
            object.__setattr__(self, "_cache", cached)
        return cached

    def latest_event(self, at: np.ndarray) -> np.ndarray:
        """Start of the latest event with a belief known at each ``at`` (µs); -1 where none."""
        at = np.asarray(at, dtype=np.int64)
        if not len(self):
            return np.full(at.shape, -1, dtype=np.int64)
        bt_s = _up_s(self.belief_time)
        order = np.argsort(bt_s, kind="stable")
        running = np.maximum.accumulate(self.event_start[order])
        i = np.searchsorted(bt_s[order], at // _S, side="right") - 1
        return np.where(i >= 0, running[np.maximum(i, 0)], -1)

    def known_span(self) -> tuple[int, int] | None:
        """First and last event start held, or None when empty."""
        if not len(self):
            return None
        return int(self.event_start[0]), int(self.event_start[-1])
