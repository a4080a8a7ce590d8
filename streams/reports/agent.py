"""Streaming reports in the worker: windows close on watermarks, results go out as beliefs.

What the feature adds (``install(ctx)``):

- a global view of the ``report-definitions`` topic (every report, followed live);
- a belief hook: each stored belief of a report input advances that input's
  watermark and marks its windows pending (:mod:`streams.reports.windows`);
- a closer task: pending windows that are due (every input's watermark past
  ``window end + grace``, or idle for ``timeout`` with one input past it) are
  computed from ClickHouse (:mod:`streams.reports.compute`, the same code as
  batch reports) and their results produced to the ``reports`` topic as
  ``BeliefBatch`` messages with the source ``flexstream-reporter:<name>`` and
  the belief time of the computation;
- a report-result hook: the ingest role stores the ``reports`` topic in
  ClickHouse like readings (:mod:`streams.ingest.outputs`; one path for
  streaming and batch results: ``flexstream add report --start --end``
  publishes there too) and feeds the stored results to it, so a report may
  read another report's output;
- ``GET /reports/``: per report, windows closed, late recomputations, values
  emitted and close-to-emit latencies.

A belief for a window that was already computed (late, or a correction) makes
it pending again; it is due at once and recomputed, and the result is emitted
as a newer belief. Nothing is dropped silently.

Window state (watermarks, open windows, which windows were computed and at
which belief time) is kept in the faust table ``report-windows``, one key per
report, backed by a changelog topic like the belief state
(:mod:`streams.beliefs.state`). A restarted worker (even one killed with
SIGKILL) recovers it before any report runs and continues where it was: open
windows close when their inputs pass them, and a late belief for a window
computed before the restart recomputes it as a newer belief. The state is
saved after every change (new input, computed windows); Kafka offsets are
committed only after the producer, and so the changelog, is flushed, so an
observed belief is never committed without its window being marked pending.
A changed definition starts afresh (the state records a fingerprint of the
definition it belongs to).

Why a table rather than rebuilding the state from ClickHouse at start: the
report outputs there tell which windows were computed, but not exactly which
input they had seen. ``ingested_at`` is the store's wall clock while belief
times come from the worker's clock (injectable), and input written during a
computation has ``ingested_at`` before that computation's belief time, so a
rebuild would either miss such input or recompute windows needlessly. The
table holds the exact state, written through its changelog from the readings
loop and the closer task (:class:`~streams.changelog_map.ChangelogMap`), each
report's key in a fixed partition (a hash of the report name).

A report registered while the worker runs covers beliefs that arrive from
then on; compute the history with a batch run. The state is per worker (the
store is too): with several workers on one prefix each runs every report on
the beliefs of its own partitions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import statistics
import time
import zlib
from collections.abc import Mapping
from typing import Any

import faust

from connectors.report_definitions import TOPIC, ReportDefinitionView
from schemas import serde
from schemas.beliefs import BeliefColumns
from schemas.errors import FlexStreamError
from streams.changelog_map import ChangelogMap
from streams.context import WorkerContext
from streams.reports.compute import (
    compute_windows,
    load_inputs,
    window_records,
)
from streams.reports.running import RunningReport, observe
from streams.reports.windows import from_us

log = logging.getLogger("flexstream.reports")

#: Windows computed per report in one round at most (the rest follow in the next).
MAX_WINDOWS_PER_ROUND = 24 * 366

#: The faust table holding each report's window state.
STATE_TABLE = "report-windows"


def install(ctx: WorkerContext) -> None:
    """Add streaming reports to the worker (see the module docstring)."""
    app = ctx.app
    s = ctx.settings
    view = ReportDefinitionView(s.kafka.client_config(ctx.bootstrap), ctx.topic(TOPIC))
    reports_topic = app.topic(ctx.topic("reports"))
    running: dict[str, RunningReport] = {}
    wake = asyncio.Event()
    loaded = asyncio.Event()
    partitions = ctx.readings_partitions
    # Keys and values are JSON, as in the table's changelog from the start.
    saved_state = ChangelogMap(
        app.Table(
            STATE_TABLE,
            default=None,
            partitions=partitions,
            key_type=bytes,
            value_type=bytes,
            schema=faust.Schema(key_serializer="raw", value_serializer="raw"),
        ),
        lambda name: zlib.crc32(name.encode()) % partitions,  # a fixed partition per report
        lambda name: json.dumps(name).encode(),
        lambda raw: str(json.loads(raw)),
    )

    def save(report: RunningReport) -> None:
        saved_state[report.definition.name] = json.dumps(report.state()).encode()

    def load(name: str) -> dict | None:
        raw = saved_state.get(name)
        return None if raw is None else json.loads(raw)

    def current() -> list[RunningReport]:
        """The running reports, in step with the definitions view."""
        defs = dict(view.reports)
        for name in [n for n in running if n not in defs]:
            del running[name]
            if name in saved_state:
                del saved_state[name]
        for name, defn in defs.items():
            r = running.get(name)
            if r is None or r.definition is not defn:
                running[name] = RunningReport(defn)  # a new version starts afresh
        out = []
        for r in running.values():
            name = r.definition.name
            saved = load(name) if r.prepared is None else None
            if r.resolve(ctx.sensors, saved):
                out.append(r)
        return out

    async def on_beliefs(cols: BeliefColumns) -> None:
        await loaded.wait()  # no belief is missed while the definitions load
        now = ctx.clock()
        touched = [r for r in current() if observe(r, cols, now)]
        for r in touched:
            save(r)
        await saved_state.flush()
        if touched:
            wake.set()

    ctx.belief_hooks.append(on_beliefs)
    ctx.report_result_hooks.append(on_beliefs)  # a report may read another report's output

    def query_arrow(sql: str, parameters: Mapping[str, Any]) -> bytes:
        store = ctx.store
        if store is None:
            raise RuntimeError("the store is not open")
        return store.raw(sql, "Arrow", parameters)

    async def close(report: RunningReport, due: list[int]) -> None:
        prep, windows = report.prepared, report.windows
        assert prep is not None and windows is not None
        t0 = time.perf_counter()
        versions = {i: windows.windows[i].version for i in due}
        late = sum(1 for i in due if windows.windows[i].computed)
        start = from_us(windows.windows[due[0]].start_us)
        end = from_us(windows.windows[due[-1]].end_us)
        db = s.clickhouse.database
        loop = asyncio.get_running_loop()
        try:
            frames = await ctx.run_db(
                lambda: load_inputs(prep, query_arrow, db, start, end)  # noqa: B023
            )
            results = await loop.run_in_executor(None, compute_windows, prep, frames, due)
        except FlexStreamError as exc:
            log.error(
                "report %s: windows %s..%s not computed: %s", prep.definition.name, start, end, exc
            )
            now = ctx.clock()
            for i in due:
                windows.done(i, windows.belief_time(i, now), versions[i])
            return
        now = ctx.clock()
        belief_times = {i: windows.belief_time(i, now) for i in due}
        futures = []
        values = 0
        for rec in window_records(prep, results, belief_times):
            values += len(rec["values"])
            value = serde.encode("BeliefBatch", rec)
            futures.append(await reports_topic.send(key=rec["sensor"].encode(), value=value))
        for i in due:
            windows.done(i, belief_times[i], versions[i])
        await asyncio.gather(*futures)
        st = report.stats
        st["closed"] += len(due) - late
        st["recomputed"] += late
        ctx.metrics.report_windows_closed.labels(prep.definition.name).inc(len(due) - late)
        ctx.metrics.report_recomputations.labels(prep.definition.name).inc(late)
        st["values"] += values
        st["latency_ms"] = [*st["latency_ms"][-999:], (time.perf_counter() - t0) * 1000]
        log.info(
            "report %s: %d window(s) %s..%s closed (%d recomputed), %d values emitted",
            prep.definition.name,
            len(due),
            start,
            end,
            late,
            values,
        )

    @app.task
    async def _follow_definitions() -> None:
        view.start()
        try:
            await asyncio.get_running_loop().run_in_executor(None, view.wait_caught_up, 60.0)
            log.info("following %d report definition(s)", len(view.reports))
        except FlexStreamError as exc:
            log.error("streaming reports are off: %s", exc)
        await ctx.ready.wait()
        await app.tables.recovery.completed.wait()  # the saved window state is back
        loaded.set()

    @app.task
    async def _close_windows() -> None:
        await loaded.wait()
        while True:
            try:
                await asyncio.wait_for(wake.wait(), 0.5)
            except TimeoutError:
                pass
            wake.clear()
            for report in current():
                windows = report.windows
                assert windows is not None
                due = windows.due(ctx.clock())
                changed = bool(due)
                while due:
                    batch, due = due[:MAX_WINDOWS_PER_ROUND], due[MAX_WINDOWS_PER_ROUND:]
                    try:
                        await close(report, batch)
                    except Exception:  # noqa: BLE001 - one report must not stop the others
                        log.exception("report %s failed", report.definition.name)
                        break
                if windows.prune() or changed:
                    save(report)
            await saved_state.flush()

    @app.page("/reports/")
    class ReportsView(faust.web.View):
        """Per report: windows closed, recomputed, values emitted, close latencies (ms)."""

        async def get(self, request: faust.web.Request) -> faust.web.Response:
            out = {}
            for name, r in running.items():
                lat = r.stats["latency_ms"]
                w = r.windows
                out[name] = {
                    "error": r.error,
                    "closed": r.stats["closed"],
                    "recomputed": r.stats["recomputed"],
                    "values": r.stats["values"],
                    "pending": len(w.pending) if w else 0,
                    "watermarks": {a: from_us(v).isoformat() for a, v in w.watermarks.items()}
                    if w
                    else {},
                    "latency_ms_median": statistics.median(lat) if lat else None,
                    "latency_ms": lat[-100:],
                }
            return self.json(out)

    _ = (_follow_definitions, _close_windows, ReportsView)
