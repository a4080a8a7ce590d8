"""The belief state's persisted form: pages in a changelog-backed faust table.

:class:`ChangelogPages` is the mapping :class:`~streams.belief_state.BeliefState`
persists its pages to; :func:`install` wires both into the worker.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any

from schemas.beliefs import BeliefColumns
from streams.belief_state import TABLE, BeliefState, PageKey, decode_key, encode_key

log = logging.getLogger("flexstream.belief_state")


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


class ChangelogPages(MutableMapping[PageKey, bytes]):
    """The persisted form in a faust table, written through its changelog.

    Writes and deletes are collected; :meth:`flush` hands them to faust's
    producer for the table's changelog topic, each in the partition of the
    readings message that carried its sensor (``partition_of``). Once Kafka
    acknowledged them, they are applied to the table's local store (RocksDB)
    with their offsets, in the order they were flushed, as a standby replica
    applies the changelog: the local store and its persisted offset never run
    ahead of the changelog, and a restarted worker recovers the rest of the
    changelog on top of it. The readings loop flushes the producer before it
    commits the readings' offsets
    (:meth:`~streams.context.WorkerContext.consume_batches`), so a committed
    reading's state is in the changelog; a write Kafka refused stops the
    worker at the next flush. Reading iterates the local store of the partitions
    this worker is active for.
    """

    def __init__(self, table: Any, partition_of: Callable[[str], int]) -> None:
        self.table = table
        self.partition_of = partition_of
        self._pending: dict[bytes, tuple[int, bytes | None]] = {}
        self._applying: asyncio.Task | None = None

    def __setitem__(self, key: PageKey, value: bytes) -> None:
        self._pending[encode_key(key)] = (self.partition_of(key[0]), value)

    def __delitem__(self, key: PageKey) -> None:
        self._pending[encode_key(key)] = (self.partition_of(key[0]), None)

    def pop(self, key: PageKey, default: Any = None) -> Any:  # type: ignore[override]
        """Delete ``key`` without reading it first (the state knows it held it)."""
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

    async def settle(self) -> None:
        """Wait until every flushed write is applied to the local store."""
        if self._applying is not None:
            await asyncio.shield(self._applying)

    def _items(self) -> Iterable[tuple[bytes, bytes]]:
        return ((k, v) for k, v in self.table.data.items() if v is not None)

    def items(self) -> Iterator[tuple[PageKey, bytes]]:  # type: ignore[override]
        """Every page held for the partitions this worker is active for."""
        for raw, value in self._items():
            try:
                key = decode_key(raw)
            except (ValueError, TypeError) as exc:
                log.warning("belief-state key %r is unreadable (%s); skipped", raw, exc)
                continue
            yield key, value

    def __getitem__(self, key: PageKey) -> bytes:
        value = self.table.data.get(encode_key(key))
        if value is None:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[PageKey]:
        return (k for k, _ in self.items())

    def __len__(self) -> int:
        return sum(1 for _ in self._items())


def install(ctx: Any) -> None:
    """Keep the belief state, persisted in a changelog-backed faust table, fed by stored beliefs."""
    import faust

    w = ctx.settings.worker
    partitions = ctx.readings_partitions
    table = ctx.app.Table(
        TABLE,
        default=None,
        partitions=partitions,
        key_type=bytes,  # raw bytes in the local store as in the changelog
        value_type=bytes,
        schema=faust.Schema(key_serializer="raw", value_serializer="raw"),
    )
    homes: dict[str, int] = {}

    def partition_of(sensor: str) -> int:
        """The readings partition of the message that carried ``sensor``'s beliefs.

        So a sensor's state lives with the readings partition its messages are
        keyed to (the worker that consumes them recovers it). A sensor not in the
        current batch keeps the partition it had, or gets one by its name's hash.
        """
        carried = ctx.sensor_partitions.get(sensor)
        if carried is not None:
            homes[sensor] = carried % partitions
        elif sensor not in homes:
            homes[sensor] = zlib.crc32(sensor.encode()) % partitions
        return homes[sensor]

    pages = ChangelogPages(table, partition_of)
    state = BeliefState(pages, ctx.clock, past=w.state_past, future=w.state_future)
    ctx.extra["belief_state"] = state
    ctx.extra["belief_changes"] = []

    # An update and a rebuild never interleave: a rebuild in the middle of an update's
    # flush would read the local store without the pages being written and lose them.
    updating = asyncio.Lock()

    @table.on_recover
    async def _restore() -> None:
        """After each recovery (start, rebalance), rebuild the working structure."""
        async with updating:
            try:
                await pages.settle()
            except Exception:  # noqa: BLE001 - the readings loop raises it at its next flush
                log.exception("a belief-state write was not acknowledged")
            n = state.restore()
        log.info("belief state restored: %d page(s)", n)
        ctx.tables_recovered.set()

    async def on_beliefs(cols: BeliefColumns) -> None:
        async with updating:
            changed = state.update(cols)
            await pages.flush()
        if changed:
            for listener in ctx.extra["belief_changes"]:
                await listener(changed)

    ctx.belief_hooks.append(on_beliefs)
