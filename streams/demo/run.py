"""``flexstream demo``: the whole pipeline on the demo site, then a summary from ClickHouse.

It starts what is not running (the broker, a worker), publishes the sample,
waits until every belief has landed, prints the summary and stops what it
started.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import yaml

from connectors.kafka import ConfirmingProducer
from connectors.settings import Settings
from infra import kafka_local
from schemas import serde
from schemas.errors import InfraError
from schemas.times import engine_time
from streams import runtime
from streams.demo.data import SENSORS, Series, demo_window, make_site
from streams.demo.schedule import run_schedule_demo
from streams.sql.access import query_rows
from streams.worker_file import worker_state


def _records(series: list[Series], chunk: int = 96) -> list[tuple[str, str, dict]]:
    """Split each series into ``BeliefBatch`` messages of at most ``chunk`` values."""
    out = []
    for s in series:
        topic = "readings.price" if s.sensor == "demo-day-ahead" else "readings.meter"
        for i in range(0, len(s.values), chunk):
            out.append(
                (
                    topic,
                    s.sensor,
                    {
                        "sensor": s.sensor,
                        "start": s.start + i * s.step,
                        "resolution_ms": s.step // timedelta(milliseconds=1),
                        "values": [float(v) for v in s.values[i : i + chunk]],
                        "belief_time": s.belief_time,
                        "belief_horizon_ms": None,
                        "source": s.source,
                        "cumulative_probability": 0.5,
                        "unit": None,
                    },
                )
            )
    return out


def _fmt_time(v: str) -> str:
    return v[:16].replace("T", " ")


def run_demo(
    settings: Settings, days: int = 4, keep_running: bool = False, echo: Callable = print
) -> dict[str, int]:
    """Run the demo; return beliefs per sensor as found in ClickHouse."""
    t0 = time.monotonic()
    was_running = settings.kafka.external or kafka_local.running(runtime.broker_dir(settings))
    bs = runtime.up(settings)
    echo(f"Kafka ready at {bs} ({time.monotonic() - t0:.1f} s)")

    data_dir = settings.paths.root
    sensors_file = data_dir / "demo" / "sensors.yaml"
    sensors_file.parent.mkdir(parents=True, exist_ok=True)
    sensors_file.write_text(
        yaml.safe_dump([s.model_dump(mode="json", by_alias=True) for s in SENSORS], sort_keys=False)
    )
    proc = None
    try:
        if worker_state(data_dir) is None:
            env = {
                **os.environ,
                "FLEXSTREAM_WORKER_SENSORS_FILE": str(sensors_file),
                "FLEXSTREAM_DATA_DIR": str(data_dir),
            }
            proc = runtime.spawn_worker(env, data_dir / "demo" / "worker.log")
            runtime.wait_worker_ready(data_dir, proc, timeout=120)
            echo(f"worker started (pid {proc.pid}), log in {data_dir / 'demo' / 'worker.log'}")
        else:
            echo("using the running worker")
        start, end = demo_window(days)
        series = make_site(start, days)
        records = _records(series)
        expected = sum(len(s.values) for s in series)
        producer = ConfirmingProducer(settings.kafka.client_config(bs))
        t1 = time.monotonic()
        for topic, key, rec in records:
            producer.send(settings.kafka.topic(topic), serde.encode("BeliefBatch", rec), key=key)
        producer.flush()
        del producer  # no client may outlive the broker the demo stops
        echo(
            f"published {expected} readings in {len(records)} messages "
            f"({start:%Y-%m-%d} to {end:%Y-%m-%d})"
        )
        counts = _wait_landed(settings, start, end, expected, timeout=120)
        echo(f"all {expected} readings landed in ClickHouse in {time.monotonic() - t1:.1f} s")
        _summary(settings, start, end, echo)
        run_schedule_demo(settings, bs, echo)
        from streams.demo.reports import demo_reports

        demo_reports(settings, echo, start, end, "demo")
        return counts
    finally:
        if proc is not None:
            runtime.stop_process(proc)
        if not keep_running and not was_running:
            runtime.down(settings)
            echo("stopped the worker and the broker it started")


#: The demo's beliefs with events in ``[start, end)``.
_WINDOW_SQL = (
    "FROM beliefs FINAL WHERE sensor LIKE 'demo-%' "
    "AND event_start >= {start:DateTime64(6, 'UTC')} AND event_start < {end:DateTime64(6, 'UTC')}"
)


def _window(start: datetime, end: datetime) -> dict[str, str]:
    """The parameters of :data:`_WINDOW_SQL`."""
    return {"start": engine_time(start), "end": engine_time(end)}


def _wait_landed(
    settings: Settings, start: datetime, end: datetime, expected: int, timeout: float
) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    sql = f"SELECT sensor, count() {_WINDOW_SQL} GROUP BY sensor"
    while True:
        _, rows = query_rows(settings, sql, _window(start, end))
        counts = {r[0]: int(r[1]) for r in rows}
        if sum(counts.values()) >= expected:
            return counts
        if time.monotonic() > deadline:
            raise InfraError(
                f"only {sum(counts.values())} of {expected} readings landed within {timeout:.0f} s"
            )
        time.sleep(0.3)


def _summary(settings: Settings, start: datetime, end: datetime, echo: Callable) -> None:
    from rich.console import Console
    from rich.table import Table

    names, rows = query_rows(
        settings,
        f"""
        SELECT b.sensor, any(s.unit) AS unit, count() AS beliefs,
               min(b.event_start) AS first, max(b.event_start) AS last,
               argMax(b.event_value, b.event_start) AS latest,
               round(min(b.event_value), 2) AS min, round(max(b.event_value), 2) AS max
        FROM (SELECT * {_WINDOW_SQL}) AS b
        LEFT JOIN (
            SELECT name, argMax(unit, updated_at) AS unit FROM sensors GROUP BY name
        ) AS s ON s.name = b.sensor
        GROUP BY b.sensor ORDER BY b.sensor""",
        _window(start, end),
    )
    table = Table(
        "sensor",
        "unit",
        "beliefs",
        "first event (UTC)",
        "last event (UTC)",
        "latest value",
        "min",
        "max",
        title="FlexStream demo site: history in ClickHouse",
    )
    for r in rows:
        rec = dict(zip(names, r, strict=True))
        table.add_row(
            rec["sensor"],
            rec["unit"],
            str(rec["beliefs"]),
            _fmt_time(rec["first"]),
            _fmt_time(rec["last"]),
            f"{rec['latest']:g}",
            f"{rec['min']:g}",
            f"{rec['max']:g}",
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    _, energy = query_rows(
        settings,
        f"""
        SELECT sumIf(event_value, sensor = 'demo-pv') * 0.25 AS pv,
               sumIf(event_value, sensor = 'demo-load') * 0.25 AS load,
               sumIf(greatest(event_value, 0), sensor = 'demo-grid') * 0.25 AS import,
               sumIf(least(event_value, 0), sensor = 'demo-grid') * 0.25 AS export
        {_WINDOW_SQL}""",
        _window(start, end),
    )
    pv, load, imp, exp = energy[0]
    echo(
        f"energy: PV produced {-pv:.1f} kWh, load consumed {load:.1f} kWh, "
        f"grid import {imp:.1f} kWh, export {-exp:.1f} kWh"
    )
