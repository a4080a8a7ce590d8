"""The ingest role's consumers of what the other roles produce: schedules, reports, scores.

Only the ingest role writes to ClickHouse. The scheduling role produces its
schedules to the ``schedules`` topic, the reporting role its results to the
``reports`` topic and the forecasting role its scoring rounds to the
``forecast-scores`` topic; the consumers here store them, as the readings are stored:
in batches through a :class:`~streams.ingest.sink.BeliefSink`, a batch's
offsets committed only once its beliefs are in the store (a crash reads the
batch again, and the beliefs table's key absorbs the replay). A schedule the
store refuses for good, or bytes that are not a schedule, become dead letters
of their message.

Consumer groups: ``<prefix>worker.schedules``, ``<prefix>worker.reports`` and
``<prefix>worker.forecast-scores``. (Forecasts themselves are readings: the
forecasting role produces them to ``readings.meter``.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.batch_consumer import RawMessage
from schemas import serde
from schemas.beliefs import BeliefColumns
from schemas.errors import InputError
from schemas.rejections import Rejection, RejectionCode
from schemas.schedule import Schedule
from streams.context import Validated, WorkerContext
from streams.forecasting.running import SCORE_COLUMNS, rows_of_score_record
from streams.ingest.sink import BeliefSink, ScoreSink
from streams.ingest.step import IngestResult, Outcome, dead_letter
from streams.scheduling.problem import as_beliefs


def schedule_beliefs(msgs: list[RawMessage], now: datetime, max_bytes: int) -> IngestResult:
    """The schedules in ``msgs`` as beliefs from the scheduler source, one part per message (pure).

    A schedule without values (an error, an infeasible request) has no beliefs;
    a message that is not a schedule becomes a dead letter (``bad-bytes``).
    """
    result = IngestResult(BeliefColumns(), [], set())
    for i, m in enumerate(msgs):
        try:
            schedule = Schedule.from_record(serde.decode_as(m.value, "Schedule"))
        except InputError as exc:
            rej = Rejection(RejectionCode.BAD_BYTES, str(exc), exc.field)
            result.dead_letters.append(dead_letter(m, rej, now, max_bytes))
            result.outcomes.append(Outcome(0, 1))
            continue
        cols = as_beliefs([schedule])
        if len(cols):
            result.parts.append((i, cols))
            result.beliefs.extend(cols)
        result.outcomes.append(Outcome(len(cols), 0))
    return result


async def store_schedules(ctx: WorkerContext) -> None:
    """Store the ``schedules`` topic in ClickHouse (a consumer of its own)."""
    await ctx.ready.wait()
    assert ctx.store is not None
    sink = BeliefSink(ctx.store, ctx.health, name="schedules")
    consumer = ctx.batch_consumer("schedules", [ctx.topic("schedules")])

    def prepare(msgs: list[RawMessage]) -> Validated:
        now = ctx.clock()
        return Validated(now, schedule_beliefs(msgs, now, ctx.limits.max_dead_letter_bytes))

    async def handle(msgs: list[RawMessage], validated: Validated) -> None:
        result = await ctx.store_batch(msgs, validated, sink)
        ctx.metrics.beliefs_stored.labels("schedules").inc(len(result.beliefs))

    try:
        await ctx.consume_batches(consumer, handle, prepare)
    finally:
        consumer.close()


async def store_report_results(ctx: WorkerContext) -> None:
    """Store the ``reports`` topic in ClickHouse; hand stored results to the report hooks."""
    await ctx.ready.wait()
    assert ctx.store is not None
    sink = BeliefSink(ctx.store, ctx.health)
    consumer = ctx.batch_consumer("reports", [ctx.topic("reports")])

    async def handle(msgs: list[RawMessage], validated: Any) -> None:
        result = await ctx.store_batch(msgs, validated, sink)
        ctx.metrics.beliefs_stored.labels("reports").inc(len(result.beliefs))
        await ctx.on_report_results(result.beliefs)

    try:
        await ctx.consume_batches(consumer, handle, ctx.validate_batch)
    finally:
        consumer.close()


def score_parts(
    msgs: list[RawMessage], now: datetime, max_bytes: int
) -> tuple[list[tuple[int, list[list[Any]]]], list[dict]]:
    """The ``forecast_scores`` rows of each ``ForecastScores`` message, and dead letters (pure)."""
    parts: list[tuple[int, list[list[Any]]]] = []
    letters: list[dict] = []
    for i, m in enumerate(msgs):
        try:
            rec = serde.decode_as(m.value, "ForecastScores")
        except InputError as exc:
            rej = Rejection(RejectionCode.BAD_BYTES, str(exc), exc.field)
            letters.append(dead_letter(m, rej, now, max_bytes))
            continue
        parts.append((i, rows_of_score_record(rec)))
    return parts, letters


async def store_forecast_scores(ctx: WorkerContext) -> None:
    """Store the ``forecast-scores`` topic in the ``forecast_scores`` table (a consumer of its own).

    The table is a ReplacingMergeTree keyed by forecaster, horizon bucket and
    round: a replayed round replaces its earlier copy.
    """
    await ctx.ready.wait()
    assert ctx.store is not None
    sink = ScoreSink(ctx.store, SCORE_COLUMNS, ctx.health)
    consumer = ctx.batch_consumer("forecast-scores", [ctx.topic("forecast-scores")])
    max_bytes = ctx.limits.max_dead_letter_bytes

    async def handle(msgs: list[RawMessage], _: None) -> None:
        now = ctx.clock()
        parts, letters = score_parts(msgs, now, max_bytes)
        by_index: dict[Any, RawMessage] = dict(enumerate(msgs))
        for i, rows in parts:
            sink.add(rows, tag=i)
        refused = await sink.flush(ctx.run_db, first=msgs[0].where, last=msgs[-1].where)
        for i, error in refused:
            rej = Rejection(
                RejectionCode.STORE_REJECTED,
                f"the history store refuses these scores: {error}",
                None,
            )
            letters.append(dead_letter(by_index[i], rej, now, max_bytes))
        await ctx.send_dead_letters(letters)

    try:
        await ctx.consume_batches(consumer, handle)
    finally:
        consumer.close()


def install(ctx: WorkerContext) -> None:
    """Add the consumers storing schedules, report results and forecast scores to the worker."""

    async def schedules_to_store() -> None:
        await store_schedules(ctx)

    async def report_results_to_store() -> None:
        await store_report_results(ctx)

    async def forecast_scores_to_store() -> None:
        await store_forecast_scores(ctx)

    ctx.app.task(schedules_to_store)
    ctx.app.task(report_results_to_store)
    ctx.app.task(forecast_scores_to_store)
