"""Scale-out of the schedule role: the belief state keyed by site.

Installed instead of :mod:`streams.beliefs.agent` when site partitions are set
(``FLEXSTREAM_WORKER_SITE_PARTITIONS``):

- **Repartitioning.** The readings consumer that feeds this worker's belief
  hooks (the ingest role's readings loop, or the feed of a worker without
  ingest) hands each stored batch to :meth:`SiteState.repartition`: every
  sensor's beliefs go to ``beliefs-by-site`` once per site that references it
  (keyed by site, in the site's partition), or, for a shared sensor, to
  ``beliefs-shared``. The hook returns once Kafka confirmed every message, and
  the readings' offsets are committed only after the hooks returned, so a crash
  replays into the repartition topic; the belief state's merge (the newest
  belief per event and source) absorbs the duplicates.
- **The site state.** A faust agent reads ``beliefs-by-site`` into a
  :class:`~streams.beliefs.state.BeliefState` whose names are (site, sensor)
  (:func:`~streams.sites.lookup.site_key`), persisted in the changelog-backed
  table ``belief-state-sites``, a site's pages in the site's partition. The
  table's changelog, ``beliefs-by-site`` and ``schedule-requests`` have the same
  partitions and are subscribed by the same workers, so faust's assignor puts
  them in one co-partitioned group: a worker active for partition ``p`` of one
  is active for ``p`` of the others, and holds its sites' requests with their
  whole state.
- **The shared state.** Every scheduling worker reads ``beliefs-shared`` whole
  (every partition, no consumer group, from the start of the state's window)
  into an in-memory belief state: an equivalent of a faust GlobalTable that
  needs no changelog recovery on rebalances.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from connectors.kafka import SITE_TOPICS
from schemas.beliefs import BeliefColumns
from schemas.errors import InputError
from schemas.times import to_us
from streams.beliefs.agent import changelog_pages
from streams.beliefs.state import BeliefState
from streams.sites import wire
from streams.sites.lookup import SiteLookup, site_key, split_key
from streams.sites.mapping import SiteMap, build_site_map, site_partition

log = logging.getLogger("flexstream.sites")

#: The site state's table (its changelog: ``<worker app id>-belief-state-sites-changelog``).
TABLE = "belief-state-sites"

Listener = Callable[[dict[str, tuple[int, int]]], Awaitable[None]]


class SiteState:
    """What the scheduling agent reads with site partitions: the mapping, the states, ownership."""

    def __init__(
        self,
        partitions: int,
        site_map: Callable[[], SiteMap],
        own: BeliefState,
        shared: BeliefState,
        assigned: Callable[[], set[int]],
    ) -> None:
        self.partitions = partitions
        self.site_map = site_map
        self.own = own
        self.shared = shared
        self.assigned = assigned
        #: Set once the shared state read ``beliefs-shared`` up to its end at start.
        self.shared_ready = asyncio.Event()
        #: Told what changed, per plain sensor name: the site state's and the shared state's.
        self.change_listeners: list[Listener] = []

    def site_of(self, asset: str) -> str:
        """The site of ``asset`` in the current registry."""
        return self.site_map().site_of(asset)

    def partition_of(self, site: str) -> int:
        """The partition of the site-keyed topics holding ``site``."""
        return site_partition(site, self.partitions)

    def owns(self, site: str) -> bool:
        """Whether this worker is active for ``site``'s partition now."""
        return self.partition_of(site) in self.assigned()

    def lookup(self, site: str) -> SiteLookup:
        """The beliefs a request of ``site`` reads."""
        return SiteLookup(site, self.own, self.shared)

    def routes(self, cols: BeliefColumns) -> tuple[list[tuple[str, int]], list[int]]:
        """(site, group) pairs to send to ``beliefs-by-site``, and the groups of shared sensors."""
        m = self.site_map()
        by_site: list[tuple[str, int]] = []
        shared: list[int] = []
        for i, sensor in wire.groups(cols):
            if sensor in m.shared:
                shared.append(i)
            else:
                by_site.extend((site, i) for site in sorted(m.sites_of(sensor)))
        return by_site, shared

    async def notify(self, changed: dict[str, tuple[int, int]]) -> None:
        """Tell the listeners what changed (site-state names turned into sensor names)."""
        if not changed:
            return
        plain: dict[str, tuple[int, int]] = {}
        for key, (lo, hi) in changed.items():
            sensor = split_key(key)[1]
            prev = plain.get(sensor)
            plain[sensor] = (min(lo, prev[0]), max(hi, prev[1])) if prev else (lo, hi)
        for listener in self.change_listeners:
            await listener(plain)


class SitePartitionsError(InputError):
    """The site-keyed topics do not have the partitions the setting names."""


def check_partitions(found: Mapping[str, int], want: int, shared: str | None = None) -> None:
    """Refuse topics of ``found`` (name -> partitions) whose count is not ``want`` (pure).

    ``shared`` (a topic of ``found`` with any number of partitions) must exist.
    """
    if shared is not None and not found.get(shared):
        raise SitePartitionsError(
            f"is {want}, but topic {shared} is missing; run 'flexstream up' to create it",
            "FLEXSTREAM_WORKER_SITE_PARTITIONS",
        )
    wrong = {t: n for t, n in found.items() if n != want and t != shared}
    if wrong:
        have = ", ".join(f"{t} has {n}" for t, n in sorted(wrong.items()))
        raise SitePartitionsError(
            f"is {want}, but {have} partition(s); run 'flexstream up' with the same setting "
            "to add partitions (a count once used cannot shrink: use a new topic prefix)",
            "FLEXSTREAM_WORKER_SITE_PARTITIONS",
        )


def topic_partitions(ctx: Any, names: list[str]) -> dict[str, int]:
    """The partitions of the topics ``names`` on the broker (0 for a missing topic)."""
    from confluent_kafka.admin import AdminClient

    md = AdminClient(ctx.settings.kafka.client_config(ctx.bootstrap)).list_topics(timeout=30)
    return {n: len(md.topics[n].partitions) if n in md.topics else 0 for n in names}


def install(ctx: Any) -> None:
    """Keep the site-keyed belief state and the shared state (with site partitions only)."""
    import faust

    w = ctx.settings.worker
    partitions = w.site_partitions
    if not partitions:
        return
    shared_topic = ctx.topic("beliefs-shared")
    names = [ctx.topic(t) for t in SITE_TOPICS] + [shared_topic]
    check_partitions(topic_partitions(ctx, names), partitions, shared_topic)
    app = ctx.app
    by_site = app.topic(ctx.topic("beliefs-by-site"), key_type=bytes, value_type=bytes)
    requests_topic = ctx.topic("schedule-requests")
    table = app.Table(
        TABLE,
        default=None,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        schema=faust.Schema(key_serializer="raw", value_serializer="raw"),
    )
    pages = changelog_pages(table, lambda key: site_partition(split_key(key)[0], partitions))
    own = BeliefState(pages, ctx.clock, past=w.state_past, future=w.state_future)
    shared = BeliefState({}, ctx.clock, past=w.state_past, future=w.state_future)

    cached: list[SiteMap | None] = [None]
    ctx.registry.add_listener(lambda kind, name, model: cached.__setitem__(0, None))

    def site_map() -> SiteMap:
        if cached[0] is None:
            cached[0] = build_site_map(dict(ctx.registry.assets), w.shared_sensor_sites)
        return cached[0]

    def assigned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic == requests_topic}

    sites = SiteState(partitions, site_map, own, shared, assigned)
    ctx.site_state = sites
    ctx.health.site_partitions = lambda: sorted(assigned())
    updating = asyncio.Lock()

    @table.on_recover
    async def _restore() -> None:
        """After each recovery (start, rebalance), rebuild the site state from its pages."""
        async with updating:
            try:
                await pages.settle()
            except Exception:  # noqa: BLE001 - the next update raises it
                log.exception("a site-state write was not acknowledged")
            n = own.restore()
        log.info("site state restored: %d page(s)", n)
        ctx.tables_recovered.set()

    async def repartition(cols: BeliefColumns) -> None:
        """Send stored beliefs on by site (and shared); return once Kafka confirmed them."""
        routed, shared_groups = sites.routes(cols)
        producer = app.producer
        futs = []
        for site, i in routed:
            value = wire.encode(site, cols, i)
            futs.append(
                await producer.send(
                    by_site.get_topic_name(),
                    site.encode(),
                    value,
                    sites.partition_of(site),
                    None,
                    None,
                )
            )
        for i in shared_groups:
            sensor = cols.sensor[i]
            futs.append(
                await producer.send(
                    shared_topic, sensor.encode(), wire.encode("", cols, i), None, None, None
                )
            )
        if futs:
            await asyncio.gather(*futs)

    ctx.belief_hooks.append(repartition)

    @app.agent(by_site)
    async def site_beliefs(stream: faust.StreamT) -> None:
        """The site state, fed from ``beliefs-by-site`` (a batch of messages at a time)."""
        async for values in stream.take(500, within=0.05):
            parts = []
            for value in values:
                try:
                    site, cols = wire.decode(value)
                except wire.WireError as exc:
                    log.warning("skipped a message of %s: %s", by_site.get_topic_name(), exc)
                    continue
                parts.append(wire.rename(cols, site_key(site, cols.sensor[0])))
            if not parts:
                continue
            async with updating:
                changed = own.update(BeliefColumns.concat(parts))
                await pages.flush()
                # Acknowledged before faust commits the messages' offsets.
                await pages.settle()
            await sites.notify(changed)

    async def follow_shared() -> None:
        await ctx.ready.wait()
        await read_shared(ctx, shared_topic, sites)

    app.task(follow_shared)


async def read_shared(ctx: Any, topic: str, sites: SiteState) -> None:
    """Read every partition of ``topic`` into the shared state, from the window's start on."""
    from confluent_kafka import Consumer, TopicPartition

    k = ctx.settings.kafka
    conf = {
        **k.client_config(ctx.bootstrap),
        "group.id": k.topic(f"worker.shared.{uuid.uuid4().hex[:12]}"),  # never commits
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    }
    loop = asyncio.get_running_loop()
    consumer = Consumer(conf)
    try:
        since = to_us(ctx.clock() - sites.shared.past - timedelta(hours=1)) // 1000

        def start() -> dict[int, tuple[int, int]]:
            """Assign every partition at the window's start: partition -> (first, end) offsets."""
            md = consumer.list_topics(topic, timeout=30).topics[topic]
            tps = [TopicPartition(topic, p, since) for p in md.partitions]
            found = consumer.offsets_for_times(tps, timeout=30)
            out = {}
            for tp in found:
                end = consumer.get_watermark_offsets(tp, timeout=30)[1]
                out[tp.partition] = (tp.offset if tp.offset >= 0 else end, end)
            consumer.assign([TopicPartition(topic, p, o) for p, (o, _) in out.items()])
            return out

        bounds = await loop.run_in_executor(None, start)
        caught = {p: first for p, (first, _) in bounds.items()}
        ends = {p: end for p, (_, end) in bounds.items()}
        if all(caught[p] >= e for p, e in ends.items()):
            sites.shared_ready.set()
        while True:
            msgs = await loop.run_in_executor(None, consumer.consume, 500, 0.2)
            parts = []
            for m in msgs:
                if m.error():
                    continue
                caught[m.partition()] = m.offset() + 1
                try:
                    parts.append(wire.decode(m.value())[1])
                except wire.WireError as exc:
                    log.warning("skipped %s[%d]@%d: %s", topic, m.partition(), m.offset(), exc)
            if parts:
                await sites.notify(sites.shared.update(BeliefColumns.concat(parts)))
            if not sites.shared_ready.is_set() and all(caught[p] >= e for p, e in ends.items()):
                sites.shared_ready.set()
                log.info("shared state caught up with %s", topic)
    finally:
        await loop.run_in_executor(None, consumer.close)
