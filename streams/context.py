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
from typing import Any

import faust

from connectors.clickhouse import Store
from connectors.registry import RegistryView
from connectors.settings import Settings
from schemas import serde
from schemas.beliefs import BeliefColumns, Limits, Sensor
from streams.ingest import IngestResult, RawMessage, ingest

log = logging.getLogger("flexstream.worker")

BeliefHook = Callable[[BeliefColumns], Awaitable[None]]


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
    belief_hooks: list[BeliefHook] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    _ready: asyncio.Event | None = None

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

    async def run_db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a blocking store call on the store's thread."""
        return await asyncio.get_running_loop().run_in_executor(self.db_executor, fn, *args)

    async def send_dead_letters(self, letters: list[dict]) -> None:
        """Produce dead letters and wait until Kafka confirms every one."""
        if not letters:
            return
        futs = [
            await self.dead_letters.send(key=d.get("key"), value=serde.encode("DeadLetter", d))
            for d in letters
        ]
        await asyncio.gather(*futs)

    async def store_batch(
        self, events: list[Any], sink: Any, limits: Limits
    ) -> tuple[list[RawMessage], IngestResult]:
        """Validate a batch of consumed events, store the beliefs, dead-letter the rest.

        Returns when the beliefs are in the store and the dead letters confirmed:
        only then may the caller let the batch's offsets be committed.
        """
        msgs = [
            RawMessage(
                e.message.topic, e.message.partition, e.message.offset, e.message.key, e.value
            )
            for e in events
        ]
        result = ingest(msgs, self.sensors, self.clock(), limits)
        sink.add(result.beliefs, result.sources)
        await sink.flush(self.run_db, first=msgs[0].where, last=msgs[-1].where)
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
        return msgs, result

    async def on_beliefs(self, beliefs: BeliefColumns) -> None:
        """Fan validated, stored beliefs out to the features."""
        if len(beliefs):
            for hook in self.belief_hooks:
                await hook(beliefs)
