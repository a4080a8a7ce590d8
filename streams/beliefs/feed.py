"""The stream of beliefs for a worker that does not ingest: a readings consumer of its own.

A worker with the ingest role hands the beliefs it stored to its features
(the belief hooks). A worker without it, but with a role that follows the
beliefs (schedule: the belief state and re-planning; report: windows;
forecast: new readings of a target), reads the readings topics itself, in the
consumer group ``<prefix>worker.feed.<roles>`` (:func:`streams.roles.feed_group`),
validates them as the ingest role does (pure; invalid messages are the ingest
role's to dead-letter) and hands the valid beliefs to the same hooks. With
the report role it also reads the ``reports`` topic (report results feed
other reports).

Roles that read the history in ClickHouse (report, forecast) must not act on
a belief before it is stored: their feed waits until the ingest workers'
groups (``<prefix>worker.readings``, ``<prefix>worker.reports``) have
committed past a batch, which they do only once it is in the store
(:class:`StoredGate`). The schedule role reads only the belief state and does
not wait.

Offsets are committed after the hooks ran and the producer (the state
tables' changelogs) flushed, as in the ingest role.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from connectors.batch_consumer import RawMessage, committed_offsets, next_offsets
from schemas.beliefs import BeliefColumns
from streams.context import Validated, WorkerContext
from streams.roles import READS_HISTORY, Role, feed_group

log = logging.getLogger("flexstream.feed")

#: Seconds a batch may wait for the ingest workers before ``/ready`` says so.
STORED_PATIENCE = 30.0

#: (topic, partition) -> offset after the last message handled.
Offsets = dict[tuple[str, int], int]


def behind(wanted: Offsets, committed: Offsets) -> Offsets:
    """The partitions of ``wanted`` whose committed offset has not reached it yet (pure)."""
    return {tp: o for tp, o in wanted.items() if committed.get(tp, -1) < o}


def split_by_topic(
    msgs: list[RawMessage], parts: list[tuple[int, BeliefColumns]], topic: str
) -> tuple[BeliefColumns, BeliefColumns]:
    """The beliefs of ``parts`` from messages not of ``topic``, and those of ``topic`` (pure)."""
    others, of_topic = BeliefColumns(), BeliefColumns()
    for i, cols in parts:
        (of_topic if msgs[i].topic == topic else others).extend(cols)
    return others, of_topic


class StoredGate:
    """Waits until the ingest workers' groups committed past a batch (see the module docstring).

    ``committed(group, partitions)`` reads a group's committed offsets (a
    blocking call, run off the event loop); ``group_of(topic)`` names the
    ingest group that stores ``topic``.
    """

    def __init__(
        self,
        committed: Callable[[str, list[tuple[str, int]]], Offsets],
        group_of: Callable[[str], str],
        health: Any,
        every: float = 0.1,
    ) -> None:
        self.committed = committed
        self.group_of = group_of
        self.health = health
        self.every = every

    async def wait(self, msgs: list[RawMessage]) -> None:
        """Return once every message of ``msgs`` is stored by the ingest role."""
        pending = next_offsets(msgs)
        t0 = time.monotonic()
        delay = self.every
        loop = asyncio.get_running_loop()
        while True:
            by_group: dict[str, list[tuple[str, int]]] = {}
            for tp in pending:
                by_group.setdefault(self.group_of(tp[0]), []).append(tp)
            got: Offsets = {}
            for group, tps in by_group.items():
                got.update(await loop.run_in_executor(None, self.committed, group, tps))
            pending = behind(pending, got)
            if not pending:
                self.health.ok("feed")
                return
            waited = time.monotonic() - t0
            if waited > STORED_PATIENCE:
                self.health.failing(
                    "feed",
                    f"waiting {waited:.0f} s for the ingest workers to store "
                    + ", ".join(f"{t}[{p}] up to offset {o}" for (t, p), o in pending.items()),
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def follow_beliefs(ctx: WorkerContext, gate: StoredGate | None) -> None:
    """Read the readings (and report results), hand their valid beliefs to the hooks."""
    group = feed_group(ctx.roles)
    assert group is not None
    await ctx.ready.wait()
    topics = [ctx.topic("readings.meter"), ctx.topic("readings.price")]
    reports = ctx.topic("reports")
    if Role.REPORT in ctx.roles:
        topics.append(reports)
    consumer = ctx.batch_consumer(group, topics)
    ctx.metrics.watch_lag(consumer.group, lambda: consumer.lag)

    async def handle(msgs: list[RawMessage], validated: Validated) -> None:
        if gate is not None:
            await gate.wait(msgs)
        for m in msgs:
            if m.key and m.topic != reports:
                ctx.sensor_partitions[m.key.decode(errors="replace")] = m.partition
        readings, results = split_by_topic(msgs, validated.result.parts, reports)
        await ctx.on_beliefs(readings)
        await ctx.on_report_results(results)

    try:
        await ctx.consume_batches(consumer, handle, ctx.validate_batch)
    finally:
        ctx.metrics.watch_lag(consumer.group, None)
        consumer.close()


def install(ctx: WorkerContext) -> None:
    """Add the feed to a worker that follows the beliefs without ingesting them."""
    if feed_group(ctx.roles) is None:
        return
    gate = None
    if ctx.roles & READS_HISTORY:
        from confluent_kafka.admin import AdminClient

        k = ctx.settings.kafka
        admin = AdminClient(k.client_config(ctx.bootstrap))
        reports = ctx.topic("reports")
        gate = StoredGate(
            lambda group, tps: committed_offsets(admin, group, tps),
            lambda topic: k.consumer_group("reports" if topic == reports else "readings"),
            ctx.health,
        )

    async def feed() -> None:
        await follow_beliefs(ctx, gate)

    ctx.app.task(feed)
