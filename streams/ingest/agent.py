"""The ingesting agent: readings in batches into ClickHouse, dead letters, the belief hooks.

Readings are consumed in batches by a consumer of their own
(:class:`~connectors.batch_consumer.BatchConsumer`, group
``<prefix>worker.readings``), not per event through faust's streams: each batch
is validated as soon as it is taken (:mod:`streams.ingest.step`), stored through
the sink, its dead letters confirmed, its beliefs handed to the features'
hooks, and only then committed
(:meth:`~streams.context.WorkerContext.consume_batches`).
"""

from __future__ import annotations

from connectors.batch_consumer import RawMessage
from streams.context import Validated, WorkerContext
from streams.ingest.sink import BeliefSink


async def ingest_readings(ctx: WorkerContext) -> None:
    """Store readings, dead-letter what is invalid, feed the stored beliefs to the features."""
    await ctx.ready.wait()
    assert ctx.store is not None
    sink = ctx.readings_sink = BeliefSink(ctx.store, ctx.health)
    consumer = ctx.batch_consumer(
        "readings", [ctx.topic("readings.meter"), ctx.topic("readings.price")]
    )
    metrics = ctx.metrics
    metrics.watch_lag(consumer.group, lambda: consumer.lag)

    async def handle(msgs: list[RawMessage], validated: Validated) -> None:
        valid = len(validated.result.beliefs)  # before the store may refuse some
        result = await ctx.store_batch(msgs, validated, sink)
        metrics.readings_messages.inc(len(msgs))
        metrics.readings_beliefs.inc(valid)
        metrics.beliefs_stored.labels("readings").inc(len(result.beliefs))
        # A sensor's state lives in the partition of the readings that carry it.
        for m in msgs:
            if m.key:
                ctx.sensor_partitions[m.key.decode(errors="replace")] = m.partition
        await ctx.on_beliefs(result.beliefs)

    try:
        await ctx.consume_batches(consumer, handle, ctx.validate_batch)
    finally:
        metrics.watch_lag(consumer.group, None)
        consumer.close()


def install(ctx: WorkerContext) -> None:
    """Add the ingesting agent to the worker."""

    async def ingest() -> None:
        await ingest_readings(ctx)

    ctx.app.task(ingest)
