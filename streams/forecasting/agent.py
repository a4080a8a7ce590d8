"""The forecasting feature: registered forecasters trained, forecasting and scored in the worker.

What ``install(ctx)`` adds:

- a belief hook: a stored belief of a forecaster's target from any source but a
  forecaster marks the forecaster for a new forecast (after ``debounce`` of
  quiet) and for scoring;
- a task that, for each forecaster of the registry (followed live):

  - retrains every ``retrain-frequency`` on the history in ClickHouse (the
    ``train-period`` before now, only beliefs believed by now; read on the
    store's thread, trained on a thread of its own, off the event loop);
  - forecasts after new readings of its target or every ``forecast-frequency``:
    one ``BeliefBatch`` per quantile over ``max-forecast-horizon``, belief time
    = now (the worker's clock), source ``forecaster:<name>``, cumulative
    probability = the quantile, produced to the ``readings.meter`` topic, so
    forecasts land in ClickHouse and the belief state like any reading;
  - scores its forecasts as measurements arrive: each forecast belief against
    the event's measured value, beside the seasonal-naive baseline known at its
    belief time, per horizon bucket, produced to the ``forecast-scores`` topic
    (one ``ForecastScores`` message per round), which the ingest role stores
    in the ``forecast_scores`` table.

The forecasting role only reads ClickHouse (history, forecasts, how far it
scored); a forecasting worker without the ingest role reads a ClickHouse
server (``CLICKHOUSE_URL``).

Without registered forecasters the hook returns at once and the task only
looks at the registry once a second. A forecaster whose target is not a known
sensor, or without enough history, waits (and says why in the log).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import faust

from schemas import serde
from schemas.beliefs import BeliefColumns, Sensor
from schemas.forecaster import is_forecast_source
from schemas.times import from_us, to_us
from streams.context import WorkerContext
from streams.forecasting.running import (
    FEATURE_HISTORY,
    RunningForecaster,
    forecast_records,
    forecasts_query,
    history_of,
    history_query,
    score_record,
    score_round,
    score_rows,
)

log = logging.getLogger("flexstream.forecasting")

#: Forecasts older than this are not scored any more when a worker starts afresh.
SCORE_LOOKBACK = timedelta(days=31)
#: The topic forecasts are produced to (as readings).
FORECASTS_TOPIC = "readings.meter"
#: The topic scoring rounds are produced to (the ingest role stores them).
SCORES_TOPIC = "forecast-scores"


def install(ctx: WorkerContext) -> None:
    """Add the forecasting feature to the worker (see the module docstring)."""
    app = ctx.app
    db = ctx.settings.clickhouse.database
    running: dict[str, RunningForecaster] = {}
    wake = asyncio.Event()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="forecaster")
    out_topic = app.topic(ctx.topic(FORECASTS_TOPIC))
    scores_topic = app.topic(ctx.topic(SCORES_TOPIC))

    def current() -> list[RunningForecaster]:
        """The running forecasters, in step with the registry (a changed one starts afresh)."""
        defs = dict(ctx.registry.forecasters)
        for name in [n for n in running if n not in defs]:
            del running[name]
        for name, definition in defs.items():
            r = running.get(name)
            if r is None or r.forecaster is not definition:
                running[name] = RunningForecaster(definition)
        return list(running.values())

    async def on_beliefs(cols: BeliefColumns) -> None:
        if not ctx.registry.forecasters:
            return
        targets = {f.sensor for f in dict(ctx.registry.forecasters).values()}
        touched = {
            sensor
            for sensor, source in zip(cols.sensor, cols.source, strict=True)
            if sensor in targets and not is_forecast_source(source)
        }
        if not touched:
            return
        mono = time.monotonic()
        for r in current():
            if r.forecaster.sensor in touched:
                r.readings_since = mono
                r.score_pending = True
        wake.set()

    ctx.belief_hooks.append(on_beliefs)

    def read_histories(names: list[str], lo: datetime, hi: datetime, known: datetime) -> Any:
        """The measured beliefs of ``names`` (on the store's thread)."""
        store = ctx.store
        assert store is not None
        return {n: history_of(store.rows(*history_query(db, n, lo, hi, known))) for n in names}

    async def histories(r: RunningForecaster, lo: datetime, hi: datetime, now: datetime) -> Any:
        from streams.forecasting.features import Histories

        f = r.forecaster
        got = await ctx.run_db(read_histories, [f.sensor, *f.regressors], lo, hi, now)
        return Histories(got.pop(f.sensor), got)

    async def train(r: RunningForecaster, sensor: Sensor, now: datetime) -> None:
        from streams.forecasting.pipeline import train as fit

        f = r.forecaster
        lo, hi = r.training_window(now)
        hist = await histories(r, lo, hi + f.max_forecast_horizon, now)
        loop = asyncio.get_running_loop()
        t = time.perf_counter()
        trained = await loop.run_in_executor(
            pool,
            fit,
            r.spec(sensor),
            f.quantiles,
            f.model,
            hist,
            to_us(now),
            to_us(now - f.train_period),
        )
        if trained is None:
            r.train_failed_at = now
            r.stats["error"] = (
                f"not enough history of {f.sensor} to train ({len(hist.target)} beliefs "
                f"since {lo:%Y-%m-%d %H:%M}Z); retrying"
            )
            log.warning("forecaster %s: %s", f.name, r.stats["error"])
            return
        r.trained, r.trained_at, r.train_failed_at = trained, now, None
        r.stats["trainings"] += 1
        r.stats["error"] = None
        log.info(
            "forecaster %s trained on %d rows in %.2f s",
            f.name,
            trained.rows,
            time.perf_counter() - t,
        )

    async def forecast(r: RunningForecaster, sensor: Sensor, now: datetime) -> None:
        from streams.forecasting.pipeline import forecast as predict

        f = r.forecaster
        assert r.trained is not None
        lo, hi = r.forecast_window(now)
        hist = await histories(r, lo, hi, now)
        loop = asyncio.get_running_loop()
        made = await loop.run_in_executor(pool, predict, r.trained, hist, to_us(now))
        step = timedelta(microseconds=r.trained.spec.step_us)
        futures = [
            await out_topic.send(key=rec["sensor"].encode(), value=serde.encode("BeliefBatch", rec))
            for rec in forecast_records(f, made, step)
        ]
        await asyncio.gather(*futures)
        r.forecast_at, r.readings_since = now, None
        r.stats["forecasts"] += 1
        log.info("forecaster %s: %d-step forecast at %s", f.name, len(made.event_start_us), now)

    def scored_until(source: str) -> int:
        store = ctx.store
        assert store is not None
        rows = store.rows(
            f"SELECT toUnixTimestamp64Micro(max(events_to)), count() "
            f"FROM {store.database}.forecast_scores WHERE source = {{source:String}}",
            {"source": source},
        )
        return int(rows[0][0]) if rows and rows[0][1] else 0

    def read_forecasts(source: str, sensor: str, lo: datetime, hi: datetime) -> list:
        store = ctx.store
        assert store is not None
        return store.rows(*forecasts_query(db, sensor, source, lo, hi))

    async def score(r: RunningForecaster, sensor: Sensor, now: datetime) -> None:
        f = r.forecaster
        if r.scored_until_us is None:
            r.scored_until_us = await ctx.run_db(scored_until, f.source)
        lo = max(from_us(r.scored_until_us), now - SCORE_LOOKBACK)
        hi = now + f.max_forecast_horizon + timedelta(days=1)
        r.score_pending = False
        rows = await ctx.run_db(read_forecasts, f.source, f.sensor, lo, hi)
        if not rows:
            return
        spec = r.spec(sensor)
        measured = (
            await histories(r, lo - FEATURE_HISTORY - f.max_forecast_horizon, hi, now)
        ).target
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(pool, score_round, f, spec, rows, measured)
        if result is None:
            return
        scores, first, end = result
        rows = score_rows(f.source, f.sensor, scores, first, end, now)
        if rows:
            value = serde.encode("ForecastScores", score_record(rows))
            await (await scores_topic.send(key=f.source.encode(), value=value))
        r.scored_until_us = end
        r.stats["scored"] += sum(b.n for b in scores)
        log.info("forecaster %s: scored %d forecasts", f.name, sum(b.n for b in scores))

    async def step(r: RunningForecaster) -> None:
        f = r.forecaster
        sensor = ctx.sensors.get(f.sensor)
        if sensor is None:
            if r.stats["error"] is None:
                r.stats["error"] = f"target sensor {f.sensor!r} is not registered"
                log.warning("forecaster %s waits: %s", f.name, r.stats["error"])
            return
        problem = f.resolution_problem(sensor.event_resolution)
        if problem:
            if r.stats["error"] != problem:
                r.stats["error"] = problem
                log.warning("forecaster %s waits: resolution %s", f.name, problem)
            return
        now = ctx.clock()
        if r.train_due(now):
            await train(r, sensor, now)
        if r.forecast_due(ctx.clock(), time.monotonic()):
            await forecast(r, sensor, ctx.clock())
        if r.score_pending or r.scored_until_us is None:
            await score(r, sensor, ctx.clock())

    @app.task
    async def _forecasters() -> None:
        await ctx.ready.wait()
        while True:
            try:
                await asyncio.wait_for(wake.wait(), 1.0)
            except TimeoutError:
                pass
            wake.clear()
            for r in current():
                try:
                    await step(r)
                except Exception as exc:  # noqa: BLE001 - one forecaster must not stop the others
                    r.stats["error"] = f"{type(exc).__name__}: {exc}"
                    r.train_failed_at = ctx.clock()
                    log.exception("forecaster %s failed", r.forecaster.name)

    @app.page("/forecasters/")
    class ForecastersView(faust.web.View):
        """Per forecaster: trainings, forecasts, scored pairs, last times, the latest problem."""

        async def get(self, request: faust.web.Request) -> faust.web.Response:
            return self.json(
                {
                    name: {
                        **r.stats,
                        "trained_at": r.trained_at.isoformat() if r.trained_at else None,
                        "forecast_at": r.forecast_at.isoformat() if r.forecast_at else None,
                    }
                    for name, r in running.items()
                }
            )

    _ = (_forecasters, ForecastersView)
