"""Batch reports and charts over the ClickHouse history, with or without a running worker.

Queries go through :func:`streams.sql.access.query_rows` (through the worker
while it runs, else straight to the store). A batch report computes the same
windows as the streaming report would, with the same code
(:mod:`streams.reports.compute`), and publishes its results to the ``reports``
topic, from which the worker stores them in ClickHouse (now, or when it next
starts).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from connectors.settings import Settings
from schemas import serde
from schemas.beliefs import Sensor
from schemas.errors import FlexStreamError, InputError
from schemas.report_definition import ReportDefinition
from schemas.times import engine_time, parse_aware
from streams.reports.compute import (
    PreparedReport,
    compute_windows,
    frame_from_rows,
    load_inputs,
    prepare,
    window_records,
)
from streams.reports.reporters.beliefs import BELIEF_COLUMNS
from streams.sql.access import query_rows, run_sql


def parse_time(text: str, option: str) -> datetime:
    """An aware ISO 8601 time from the command line, in UTC."""
    return parse_aware(
        text,
        option,
        utc=True,
        unreadable="cannot read {value!r} as an ISO 8601 time",
        naive="give a UTC offset, e.g. 2026-04-01T00:00+02:00 or ...Z",
    )


def known_sensors(settings: Settings, with_registry: bool = True) -> dict[str, Sensor]:
    """Sensors as ClickHouse knows them (mirrored by the worker), the registry's on top."""
    out: dict[str, Sensor] = {}
    try:
        _, rows = query_rows(
            settings,
            "SELECT name, unit, event_resolution, timezone, off_grid, description "
            "FROM sensors FINAL",
        )
    except FlexStreamError:
        rows = []
    for name, unit, res, tz, off_grid, desc in rows:
        out[name] = Sensor(
            name=name,
            unit=unit,
            event_resolution=timedelta(seconds=int(res)),
            timezone=tz,
            off_grid=off_grid or "reject",
            description=desc or "",
        )
    if with_registry:
        try:
            from connectors.registry import read_registry
            from streams import runtime

            bs = runtime.bootstrap(settings, start=False)
            view = read_registry(
                settings.kafka.client_config(bs), settings.kafka.topic("registry"), 15
            )
            out.update(view.sensors)
        except FlexStreamError:
            pass
    return out


def run_batch(
    settings: Settings,
    defn: ReportDefinition,
    start: datetime,
    end: datetime,
    sensors: Mapping[str, Sensor] | None = None,
    belief_time: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[PreparedReport, list[dict[str, Any]]]:
    """Compute the report's windows in ``[start, end)``; return ``BeliefBatch`` records.

    ``progress`` is told ``(windows computed, windows)`` as the computation goes.
    """
    prep = prepare(defn, sensors if sensors is not None else known_sensors(settings))
    try:
        windows = prep.spec.between(start, end)
    except ValueError as exc:
        which = str(exc)
        raise InputError(
            f"the {which} is not a window bound of this report (window "
            f"{prep.parameters.window}, timezone {prep.parameters.timezone}); "
            "align it, e.g. to a local midnight for daily windows",
            f"--{which}",
        ) from None
    if progress is not None:
        progress(0, len(windows))  # the total, while the inputs load
    frames = load_inputs(
        prep,
        lambda sql, params: run_sql(settings, sql, "Arrow", parameters=params),
        settings.clickhouse.database,
        start,
        end,
    )
    results = compute_windows(prep, frames, windows, progress)
    bt = belief_time or datetime.now(UTC)
    return prep, window_records(prep, results, dict.fromkeys(windows, bt))


def publish_records(settings: Settings, records: list[dict[str, Any]]) -> int:
    """Publish result records to the reports topic; returns messages confirmed."""
    from connectors.kafka import ConfirmingProducer
    from streams import runtime

    bs = runtime.bootstrap(settings, start=False)
    producer = ConfirmingProducer(settings.kafka.client_config(bs))
    topic = settings.kafka.topic("reports")
    for rec in records:
        producer.send(topic, serde.encode("BeliefBatch", rec), key=rec["sensor"])
    return producer.flush()


def record_rows(records: Iterable[dict[str, Any]], timezone: str = "UTC") -> list[dict[str, Any]]:
    """One row per value: sensor, event start (UTC), value, belief time, source."""
    from streams.reports.reporters.grid import is_calendar

    rows = []
    for rec in records:
        res = timedelta(milliseconds=rec["resolution_ms"])
        starts = [rec["start"] + i * res for i in range(len(rec["values"]))]
        if is_calendar(res) and timezone != "UTC":
            local = pd.Timestamp(rec["start"]).tz_convert(timezone)
            starts = [
                (local + pd.DateOffset(days=i * (res // timedelta(days=1)))).tz_convert("UTC")
                for i in range(len(rec["values"]))
            ]
        for t, v in zip(starts, rec["values"], strict=True):
            rows.append(
                {
                    "sensor": rec["sensor"],
                    "event_start": pd.Timestamp(t).tz_convert("UTC").isoformat(),
                    "event_value": v,
                    "belief_time": rec["belief_time"].isoformat(),
                    "source": rec["source"],
                }
            )
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> Path:
    """Write result rows as CSV (a header, one row per value)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(
            f, fieldnames=["sensor", "event_start", "event_value", "belief_time", "source"]
        )
        w.writeheader()
        w.writerows(rows)
    return path


#: Every belief of a sensor with events in ``[start, end)``, in the project's database.
_HISTORY_SQL = (
    "SELECT " + ", ".join(BELIEF_COLUMNS) + " FROM beliefs FINAL "
    "WHERE sensor = {sensor:String} AND event_start >= {start:DateTime64(6, 'UTC')} "
    "AND event_start < {end:DateTime64(6, 'UTC')} ORDER BY event_start"
)


def history_frames(
    settings: Settings, sensors: list[str], start: datetime, end: datetime
) -> dict[str, pd.DataFrame]:
    """Every belief of each sensor with events in ``[start, end)`` (all sources)."""
    bounds = {"start": engine_time(start), "end": engine_time(end)}
    return {
        name: frame_from_rows(query_rows(settings, _HISTORY_SQL, {"sensor": name, **bounds})[1])
        for name in sensors
    }


def write_chart(
    settings: Settings,
    sensors: list[str],
    start: datetime,
    end: datetime,
    path: str | Path,
    title: str | None = None,
    timezone: str | None = None,
) -> Path:
    """Chart the beliefs, schedules and reports of ``sensors`` in ``[start, end)``.

    Times show in ``timezone``, by default the sensors' own timezone when they
    share one, else UTC (see :func:`streams.cli.charts.build_chart`).
    """
    from streams.cli.charts import build_chart, save_chart

    frames = history_frames(settings, sensors, start, end)
    empty = [n for n, f in frames.items() if f.empty]
    if len(empty) == len(frames):
        raise InputError(
            f"no beliefs for {', '.join(sensors)} between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} UTC; check the sensor names and the period",
            "--sensor",
        )
    known = known_sensors(settings, with_registry=False)
    units = {n: known[n].unit for n in sensors if n in known}
    zones = {n: known[n].timezone for n in sensors if n in known}
    chart = build_chart(
        {n: f for n, f in frames.items() if not f.empty},
        units,
        title=title,
        timezone=timezone,
        zones=zones,
    )
    return save_chart(chart, path)
