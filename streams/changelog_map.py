"""A mapping kept in a faust table and written through its changelog, from any task.

Faust writes a table from inside the agent whose event names the partition.
The worker's state tables (belief-state pages, report windows) are written from
the readings loop and from tasks instead, so :class:`ChangelogMap` writes with
faust's public pieces: it produces each change to the table's changelog topic
in the partition its key belongs to (``partition_of``), and once Kafka
acknowledged the changes it applies them to the table's local store (RocksDB)
with their offsets, in the order they were flushed, as a standby replica
applies the changelog. The local store and its persisted offset never run ahead
of the changelog, and a restarted worker recovers the rest of the changelog on
top of it.

Writes and deletes are collected; :meth:`ChangelogMap.flush` sends them. A
write Kafka refused raises at the next flush. Reads see the map's own writes
at once (collected, in flight, then the local store of the partitions this
worker is active for).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger("flexstream.changelog")

K = TypeVar("K")


@dataclass(slots=True)
class _ChangelogRecord:
    """An acknowledged changelog record, in the shape a faust store applies (event and message)."""

    tp: Any
    partition: int
    offset: int
    key: bytes
    value: bytes | None

    @property
    def message(self) -> _ChangelogRecord:
        """The record is its own message."""
        return self


class ChangelogMap(MutableMapping[K, bytes], Generic[K]):
    """Keys ``K`` (stored as ``encode(key)``) to bytes in a faust table (see the module)."""

    def __init__(
        self,
        table: Any,
        partition_of: Callable[[K], int],
        encode: Callable[[K], bytes],
        decode: Callable[[bytes], K],
    ) -> None:
        self.table = table
        self.partition_of = partition_of
        self.encode = encode
        self.decode = decode
        self._pending: dict[bytes, tuple[int, bytes | None]] = {}
        self._in_flight: dict[bytes, bytes | None] = {}
        self._applying: asyncio.Task | None = None

    def __setitem__(self, key: K, value: bytes) -> None:
        self._pending[self.encode(key)] = (self.partition_of(key), value)

    def __delitem__(self, key: K) -> None:
        self._pending[self.encode(key)] = (self.partition_of(key), None)

    def pop(self, key: K, default: Any = None) -> Any:  # type: ignore[override]
        """Delete ``key`` without reading it first (the caller knows it held it)."""
        del self[key]
        return default

    async def flush(self) -> int:
        """Produce the collected writes; they apply locally once acknowledged. Return how many.

        Raises the error of an earlier write that Kafka refused.
        """
        finished = self._applying
        if finished is not None and finished.done():
            self._applying = None
            if not finished.cancelled() and (exc := finished.exception()) is not None:
                raise exc
        previous = self._applying
        if not self._pending:
            return 0
        pending, self._pending = self._pending, {}
        self._in_flight.update((raw, value) for raw, (_, value) in pending.items())
        producer = self.table.app.producer
        topic = self.table.changelog_topic_name
        futs = [
            await producer.send(topic, raw, value, partition, None, None)
            for raw, (partition, value) in pending.items()
        ]
        self._applying = asyncio.ensure_future(self._apply(previous, pending, futs))
        return len(futs)

    async def _apply(
        self,
        previous: asyncio.Task | None,
        pending: dict[bytes, tuple[int, bytes | None]],
        futs: list[Any],
    ) -> None:
        """Apply acknowledged writes to the local store, after the writes flushed before."""
        from faust.types import TP

        if previous is not None:
            await previous
        metas = await asyncio.gather(*futs)
        tps: dict[int, Any] = {}
        records = []
        for (raw, (_, value)), meta in zip(pending.items(), metas, strict=True):
            tp = tps.get(meta.partition) or tps.setdefault(
                meta.partition, TP(meta.topic, meta.partition)
            )
            records.append(_ChangelogRecord(tp, meta.partition, meta.offset, raw, value))
        self.table.apply_changelog_batch(records)
        for raw, (_, value) in pending.items():
            if raw in self._in_flight and self._in_flight[raw] is value:
                del self._in_flight[raw]

    async def settle(self) -> None:
        """Wait until every flushed write is applied to the local store."""
        if self._applying is not None:
            await asyncio.shield(self._applying)

    def _items(self) -> Iterable[tuple[bytes, bytes]]:
        return ((k, v) for k, v in self.table.data.items() if v is not None)

    def items(self) -> Iterator[tuple[K, bytes]]:  # type: ignore[override]
        """Every entry of the local store (the partitions this worker is active for)."""
        for raw, value in self._items():
            try:
                key = self.decode(raw)
            except (ValueError, TypeError) as exc:
                log.warning("key %r of table %s is unreadable (%s); skipped", raw, self.table, exc)
                continue
            yield key, value

    def __getitem__(self, key: K) -> bytes:
        raw = self.encode(key)
        if raw in self._pending:
            value = self._pending[raw][1]
        elif raw in self._in_flight:
            value = self._in_flight[raw]
        else:
            value = self.table.data.get(raw)
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[K]:
        return (k for k, _ in self.items())

    def __len__(self) -> int:
        return sum(1 for _ in self._items())
