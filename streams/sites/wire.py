"""The messages of the site-keyed belief topics: one (site, sensor, source) series each (pure).

``beliefs-by-site`` and ``beliefs-shared`` are internal topics, written and read
only by the workers (as the tables' changelogs are): their messages carry
beliefs that were validated and stored already, so they are a compact binary
copy of :class:`~schemas.beliefs.BeliefColumns` rows rather than Avro.

Layout (little-endian): the magic ``FSS1``; the lengths of site, sensor and
source (uint16 each) and the number of beliefs (uint32); the three names in
UTF-8; then five arrays of that length: event starts (int64 us), event
resolutions (int64 s), belief times (int64 us), cumulative probabilities
(float64) and values (float64).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from schemas.beliefs import BeliefColumns
from schemas.errors import InputError

MAGIC = b"FSS1"
_HEAD = struct.Struct("<4sHHHI")
_COLUMNS = (
    ("event_start_us", np.int64),
    ("event_resolution_s", np.int64),
    ("belief_time_us", np.int64),
    ("cumulative_probability", np.float64),
    ("event_value", np.float64),
)


class WireError(InputError):
    """Bytes that are not a site-keyed belief message."""


def encode(site: str, cols: BeliefColumns, i: int) -> bytes:
    """Group ``i`` of ``cols`` (one sensor and source) as a message for ``site``."""
    names = [site.encode(), cols.sensor[i].encode(), cols.source[i].encode()]
    n = cols.counts[i]
    parts = [_HEAD.pack(MAGIC, *(len(x) for x in names), n), *names]
    for col, dtype in _COLUMNS:
        parts.append(np.asarray(getattr(cols, col)[i], dtype=dtype).tobytes())
    return b"".join(parts)


def decode(data: bytes) -> tuple[str, BeliefColumns]:
    """The site and the one-group columns of a message of :func:`encode`."""
    if len(data) < _HEAD.size or data[:4] != MAGIC:
        raise WireError("not a site-keyed belief message (no FSS1 header)", "value")
    _, ls, lz, lo, n = _HEAD.unpack_from(data)
    at = _HEAD.size
    if len(data) != at + ls + lz + lo + 8 * n * len(_COLUMNS):
        raise WireError(f"a site-keyed belief message of {len(data)} bytes is cut short", "value")
    site, sensor, source = (
        data[at : at + ls].decode(),
        data[at + ls : at + ls + lz].decode(),
        data[at + ls + lz : at + ls + lz + lo].decode(),
    )
    at += ls + lz + lo
    cols = BeliefColumns(sensor=[sensor], source=[source], counts=[n])
    for col, dtype in _COLUMNS:
        getattr(cols, col).append(np.frombuffer(data, dtype=dtype, count=n, offset=at).copy())
        at += 8 * n
    return site, cols


def groups(cols: BeliefColumns) -> Iterator[tuple[int, str]]:
    """Index and sensor of every non-empty group of ``cols``."""
    for i, (sensor, n) in enumerate(zip(cols.sensor, cols.counts, strict=True)):
        if n:
            yield i, sensor


def rename(cols: BeliefColumns, name: str) -> BeliefColumns:
    """``cols`` with every group's sensor renamed to ``name`` (arrays shared, not copied)."""
    out = BeliefColumns()
    out.extend(cols)
    out.sensor = [name] * len(out.sensor)
    return out
