"""What the worker's features share: settings, the registry view, the store, hooks.

``create_app`` builds one :class:`WorkerContext` and hands it to each feature's
``install(ctx)`` (ingestion, belief state, scheduling, reports), so features do
not reach into each other. Validated beliefs fan out through ``belief_hooks``,
called inside the ingesting agent after the beliefs are stored (so a hook may
write faust tables).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import faust

from connectors.batch_consumer import BatchConsumer
from connectors.clickhouse import Store
from connectors.registry import RegistryView
from connectors.settings import Settings
from schemas import serde
from schemas.beliefs import BeliefColumns, Limits, Sensor
from schemas.rejections import Rejection, RejectionCode
from streams.beliefs.state import BeliefState
from streams.health import Health
from streams.ingest.sink import BeliefSink
from streams.ingest.step import IngestResult, Outcome, RawMessage, dead_letter, ingest
from streams.metrics import Metrics
from streams.roles import EVERY_ROLE, Role
from streams.sites.agent import SiteState

log = logging.getLogger("flexstream.worker")

BeliefHook = Callable[[BeliefColumns], Awaitable[None]]


class Validated(NamedTuple):
    """A batch's messages decoded and validated, and the time they were validated at."""

    now: datetime
    result: IngestResult


#: Called with what an update changed in the belief state: sensor -> (first, last) µs.
ChangeListener = Callable[[dict[str, tuple[int, int]]], Awaitable[None]]


async def _failed(exc: BaseException) -> None:
    raise exc


@dataclass
class WorkerContext:
    """Shared state of one worker process."""

    app: faust.App
    settings: Settings
    bootstrap: str
    registry: RegistryView
    sensors: Mapping[str, Sensor]
    clock: Callable[[], datetime]
    db_executor: ThreadPoolExecutor
    dead_letters: Any
    store: Store | None = None
    health: Health = field(default_factory=Health)
    #: The worker's Prometheus metrics (``GET /metrics``).
    metrics: Metrics = field(default_factory=Metrics)
    belief_hooks: list[BeliefHook] = field(default_factory=list)
    #: Called with stored report results (the ``reports`` topic), apart from the readings.
    report_result_hooks: list[BeliefHook] = field(default_factory=list)
    #: The worker's roles (:mod:`streams.roles`): which features it runs.
    roles: frozenset[Role] = EVERY_ROLE
    #: The sink of the readings (set by the ingesting agent once the store is open).
    readings_sink: BeliefSink | None = None
    #: The rolling belief state (set by the feature that keeps it).
    belief_state: BeliefState | None = None
    #: Told what each belief-state update changed, after it is persisted.
    belief_change_listeners: list[ChangeListener] = field(default_factory=list)
    #: With site partitions: the site-keyed and shared belief states (set by ``streams.sites``).
    site_state: SiteState | None = None
    #: The readings partition each sensor's latest message came from (its state's home).
    sensor_partitions: dict[str, int] = field(default_factory=dict)
    _ready: asyncio.Event | None = None
    _recovered: asyncio.Event | None = None

    @property
    def readings_partitions(self) -> int:
        """Partitions of the readings topics, which tables fed from them must match."""
        from connectors.kafka import topic_specs

        return max(t.partitions for t in topic_specs() if t.name.startswith("readings."))

    def topic(self, name: str) -> str:
        """Full name of a project topic."""
        return self.settings.kafka.topic(name)

    @property
    def ready(self) -> asyncio.Event:
        """Set once the registry is caught up and the store is open."""
        if self._ready is None:
            self._ready = asyncio.Event()
        return self._ready

    @property
    def tables_recovered(self) -> asyncio.Event:
        """Set once the worker's tables recovered (set by the feature that owns them)."""
        if self._recovered is None:
            self._recovered = asyncio.Event()
        return self._recovered

    def batch_consumer(self, name: str, topics: list[str]) -> BatchConsumer:
        """A consumer of ``topics`` in the group ``<worker group>.<name>``.

        Where that group has not committed yet, it continues from the worker
        group's own offsets (where faust's streams consumed these topics before).
        """
        k = self.settings.kafka
        return BatchConsumer(
            k.client_config(self.bootstrap),
            k.consumer_group(name),
            topics,
            carry_offsets_from=k.topic("worker"),
            session_timeout_s=self.settings.worker.session_timeout,
            heartbeat_interval_s=self.settings.worker.heartbeat_interval,
        )

    async def run_db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking store call on the store's thread."""
        return await asyncio.get_running_loop().run_in_executor(self.db_executor, fn, *args)

    async def send_dead_letters(self, letters: list[dict]) -> None:
        """Produce dead letters and wait until Kafka confirms every one.

        A dead letter Kafka does not confirm is logged with its coordinates and
        sent again (with backoff) until it is: the batch is never acknowledged
        with a dead letter missing. Meanwhile the worker reports not ready.
        """
        delay = 0.5
        pending = letters
        while pending:
            futs = []
            for d in pending:
                try:
                    value = serde.encode("DeadLetter", d)
                    futs.append(await self.dead_letters.send(key=d.get("key"), value=value))
                except Exception as exc:  # noqa: BLE001 - retried below like a failed delivery
                    futs.append(_failed(exc))
            results = await asyncio.gather(*futs, return_exceptions=True)
            failed = [
                d for d, r in zip(pending, results, strict=True) if isinstance(r, BaseException)
            ]
            if not failed:
                self.health.ok("dead-letters")
                self.metrics.count_dead_letters(letters)
                return
            errors = [r for r in results if isinstance(r, BaseException)]
            for d in failed[:10]:
                log.error(
                    "dead letter for %s[%s]@%s not confirmed (%s); sending again",
                    d["topic"],
                    d["partition"],
                    d["offset"],
                    errors[0],
                )
            self.health.failing(
                "dead-letters", f"{len(failed)} dead letters unconfirmed: {errors[0]}"
            )
            pending = failed
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    @property
    def limits(self) -> Limits:
        """Validation limits of readings, from the settings."""
        w = self.settings.worker
        return Limits(w.max_batch_values, w.max_belief_time_ahead, w.dead_letter_max_bytes)

    def validate_batch(self, msgs: list[RawMessage]) -> Validated:
        """Decode and validate a batch of consumed messages (pure; never raises)."""
        now = self.clock()
        return Validated(now, ingest(msgs, self.sensors, now, self.limits))

    async def store_batch(
        self, msgs: list[RawMessage], validated: Validated, sink: Any
    ) -> IngestResult:
        """Store a validated batch's beliefs, dead-letter the rest.

        Returns when the beliefs are in the store and the dead letters confirmed:
        only then may the caller commit the batch's offsets. Beliefs the
        store refuses for good (it answers, but not to them) become dead letters
        of their message with reason ``store-rejected``.
        """
        now, result = validated
        sink.add_parts(result.parts, result.sources)
        refused = await sink.flush(self.run_db, first=msgs[0].where, last=msgs[-1].where)
        if refused:
            self._refused_to_dead_letters(msgs, result, refused, now, self.limits)
        await self.send_dead_letters(result.dead_letters)
        for d in result.dead_letters:
            log.warning(
                "dead letter %s[%s]@%s: %s (%s)",
                d["topic"],
                d["partition"],
                d["offset"],
                d["reason"],
                d["field"],
            )
        return result

    @staticmethod
    def _refused_to_dead_letters(
        msgs: list[RawMessage],
        result: IngestResult,
        refused: list[tuple[Any, str]],
        now: datetime,
        limits: Limits,
    ) -> None:
        """Turn the parts the store refused into dead letters; drop them from the result."""
        errors = dict(refused)
        kept = BeliefColumns()
        parts = []
        for i, cols in result.parts:
            if i in errors:
                rej = Rejection(
                    RejectionCode.STORE_REJECTED,
                    f"the history store refuses these beliefs: {errors[i]}; nothing of this "
                    "message was stored, fix what the error names and send it again",
                    None,
                )
                result.dead_letters.append(
                    dead_letter(msgs[i], rej, now, limits.max_dead_letter_bytes)
                )
                o = result.outcomes[i]
                result.outcomes[i] = Outcome(0, o.rejected + 1)
            else:
                parts.append((i, cols))
                kept.extend(cols)
        result.parts = parts
        result.beliefs = kept

    async def consume_batches(
        self,
        consumer: Any,
        handle: Callable[[list[RawMessage], Any], Awaitable[None]],
        prepare: Callable[[list[RawMessage]], Any] | None = None,
    ) -> None:
        """Hand batches taken from ``consumer`` to ``handle``; commit each batch after it.

        ``handle(msgs, prepared)`` gets what ``prepare(msgs)`` returned (None
        without ``prepare``): a pure step (e.g. validation) that runs as soon as
        the batch is taken, while the batch before it is still being written.

        ``consumer`` is a :class:`~connectors.batch_consumer.BatchConsumer` (or
        anything with its ``take``, ``commit`` and ``closed``). A batch's offsets
        are committed only when ``handle`` returned and the worker's producer
        has delivered what the batch caused (dead letters, state changelogs). If
        ``handle`` raises, nothing more is committed and the failure propagates
        (it stops the worker; the restarted worker reads the batch again).

        Batches are handled one at a time, in order, by a writer task, while
        the next batch fills: taking and writing overlap (at most one batch
        waits beside the one being handled). Each batch waits until the
        worker's tables are in step (recovered, not rebalancing).
        """
        w = self.settings.worker
        queue: asyncio.Queue[tuple[list[RawMessage], Any]] = asyncio.Queue(maxsize=1)

        async def writer() -> None:
            while True:
                msgs, prepared = await queue.get()
                await self.in_step()
                await handle(msgs, prepared)
                if self.app is not None:
                    await self.app.producer.flush()
                await consumer.commit(msgs)
                queue.task_done()

        task = asyncio.ensure_future(writer())
        try:
            while not consumer.closed:
                msgs = await consumer.take(w.batch_max, w.batch_within)
                if task.done():
                    task.result()  # the writer's failure stops this loop
                if not msgs:
                    continue
                prepared = prepare(msgs) if prepare is not None else None
                put = asyncio.ensure_future(queue.put((msgs, prepared)))
                await asyncio.wait({put, task}, return_when=asyncio.FIRST_COMPLETED)
                if task.done():
                    put.cancel()
                    task.result()
            # The consumer closed: let the writer finish what it was given.
            done = asyncio.ensure_future(queue.join())
            await asyncio.wait({done, task}, return_when=asyncio.FIRST_COMPLETED)
            done.cancel()
            if task.done():
                task.result()
        finally:
            task.cancel()

    async def in_step(self) -> None:
        """Wait until the worker's tables are recovered and no rebalance is under way."""
        await self.tables_recovered.wait()
        if self.app is not None:
            await self.app.flow_control.acquire()

    async def on_beliefs(self, beliefs: BeliefColumns) -> None:
        """Fan validated, stored beliefs out to the features."""
        if len(beliefs):
            for hook in self.belief_hooks:
                await hook(beliefs)

    async def on_report_results(self, beliefs: BeliefColumns) -> None:
        """Fan stored report results out to the features that read them."""
        if len(beliefs):
            for hook in self.report_result_hooks:
                await hook(beliefs)
