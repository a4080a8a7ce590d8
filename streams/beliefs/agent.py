"""The belief state's persisted form: pages in a changelog-backed faust table.

:func:`changelog_pages` is the mapping :class:`~streams.beliefs.state.BeliefState`
persists its pages to (a :class:`~streams.changelog_map.ChangelogMap`: written
through the changelog, each sensor's pages in the partition of the readings
that carry it); :func:`install` wires both into the worker. The readings loop
flushes the producer before it commits the readings' offsets
(:meth:`~streams.context.WorkerContext.consume_batches`), so a committed
reading's state is in the changelog.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Callable
from typing import Any

from schemas.beliefs import BeliefColumns
from streams.beliefs.block import TABLE, PageKey, decode_key, encode_key
from streams.beliefs.state import BeliefState
from streams.changelog_map import ChangelogMap

log = logging.getLogger("flexstream.belief_state")


def changelog_pages(table: Any, partition_of: Callable[[str], int]) -> ChangelogMap[PageKey]:
    """The pages of the belief state in ``table``; a sensor's pages in its ``partition_of``."""
    return ChangelogMap(table, lambda key: partition_of(key[0]), encode_key, decode_key)


def install(ctx: Any) -> None:
    """Keep the belief state, persisted in a changelog-backed faust table, fed by stored beliefs."""
    import faust

    w = ctx.settings.worker
    if w.site_partitions:
        return  # the belief state is keyed by site (streams.sites.agent)
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

    pages = changelog_pages(table, partition_of)
    state = BeliefState(pages, ctx.clock, past=w.state_past, future=w.state_future)
    ctx.belief_state = state

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
            for listener in ctx.belief_change_listeners:
                await listener(changed)

    ctx.belief_hooks.append(on_beliefs)
