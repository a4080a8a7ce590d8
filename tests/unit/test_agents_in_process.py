"""Agents run in this process: the readings loop with a stand-in consumer, store and clock.

No broker, no worker process, no engine: :func:`streams.ingest.agent.ingest_readings`
runs its real batch loop (``WorkerContext.consume_batches``, ``validate_batch``,
``store_batch``, the belief hooks) against a consumer that hands out fixed
batches, an in-memory store, a dead-letter topic that confirms at once, and a
fixed clock.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from connectors.batch_consumer import RawMessage
from connectors.settings import Settings
from schemas import serde
from schemas.beliefs import BeliefColumns, Sensor
from streams.context import WorkerContext
from streams.ingest.agent import ingest_readings

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
T0 = datetime(2026, 6, 1, tzinfo=UTC)
SENSORS = {"pv": Sensor(name="pv", unit="kW", event_resolution="PT15M")}
TOPIC = "readings.meter"


class Consumer:
    """Hands out fixed batches like a ``BatchConsumer``; records commits and closing."""

    group = "t.worker.readings"
    lag: dict = {}

    def __init__(self, batches: list[list[RawMessage]]) -> None:
        self.batches = batches
        self.committed: list[RawMessage] = []
        self.closed = False
        self.shut = False

    async def take(self, n: int, within: float) -> list[RawMessage]:
        # Kept: a real consumer suspends here; one turn of the loop, not a wait for time.
        await asyncio.sleep(0)
        if not self.batches:
            self.closed = True
            return []
        return self.batches.pop(0)

    async def commit(self, msgs: list[RawMessage]) -> None:
        self.committed.extend(msgs)

    def close(self) -> None:
        self.shut = True


class Store:
    """Keeps inserted beliefs in memory."""

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.sources: list[str] = []

    def insert_beliefs(self, table: pa.Table) -> int:
        self.tables.append(table)
        return table.num_rows

    def add_sources(self, names) -> None:
        self.sources.extend(names)

    def ping(self) -> bool:
        return True


class DeadLetters:
    """A dead-letter topic whose sends are confirmed at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []

    async def send(self, key, value):
        self.sent.append((key, value))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result("ok")
        return fut


def reading(offset: int, values, key: bytes = b"pv") -> RawMessage:
    value = serde.encode(
        "BeliefBatch",
        {"sensor": "pv", "start": T0, "resolution_ms": 900_000, "values": list(values)},
    )
    return RawMessage(TOPIC, 0, offset, key, value)


def test_the_readings_loop_stores_dead_letters_feeds_hooks_and_commits():
    good = [reading(0, [1.0, 2.0]), reading(1, [3.0])]
    bad = [RawMessage(TOPIC, 0, 2, b"pv", b"not avro"), reading(3, [4.0])]
    consumer, store, letters, hooked = Consumer([good, bad]), Store(), DeadLetters(), []
    executor = ThreadPoolExecutor(max_workers=1)
    ctx = WorkerContext(
        app=None,
        settings=Settings(),
        bootstrap="",
        registry=None,
        sensors=SENSORS,
        clock=lambda: NOW,
        db_executor=executor,
        dead_letters=letters,
        store=store,
    )
    ctx.batch_consumer = lambda name, topics: consumer

    async def hook(cols: BeliefColumns) -> None:
        hooked.append(cols)

    ctx.belief_hooks.append(hook)

    async def main() -> None:
        ctx.ready.set()
        ctx.tables_recovered.set()
        await asyncio.wait_for(ingest_readings(ctx), 10)

    try:
        asyncio.run(main())
    finally:
        executor.shutdown()

    values = [v for t in store.tables for v in t.column("event_value").to_pylist()]
    assert values == [1.0, 2.0, 3.0, 4.0]
    assert consumer.committed == good + bad and consumer.shut
    [(key, value)] = letters.sent
    kind, letter = serde.decode(value)
    assert (kind, key, letter["offset"], letter["topic"]) == ("DeadLetter", b"pv", 2, TOPIC)
    # A measurement without a belief time is believed at its event's end; the
    # dead letter is stamped with the injected clock's now.
    ends = [(T0.timestamp() + 900 * (i + 1)) * 1_000_000 for i in (0, 1, 0, 0)]
    times = np.concatenate([np.concatenate(c.belief_time_us) for c in hooked])
    assert times.tolist() == ends
    assert letter["rejected_at"] in (NOW, int(NOW.timestamp() * 1000))
    assert ctx.sensor_partitions == {"pv": 0}
