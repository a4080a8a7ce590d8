"""Benchmark of streaming reports: throughput through an hourly report, close-to-report latency.

On the real broker and the embedded engine, one worker per run, side by side:

- readings/s from the first publish until every reading is in ClickHouse and
  (with the report) every hourly window's result is in ClickHouse too; without
  a report, then with an hourly AggregatorReporter over two inputs (pv, load:
  15-minute readings in batches of 96 per sensor and day);
- latency from a window's close to its report: one hour of readings of both
  inputs is published, the last of which moves both watermarks past the
  previous hour's end + grace (PT0M); measured from that publish until the
  result is visible in ClickHouse (end to end: ingest, close, compute,
  reports topic, store), and inside the worker from the close decision until
  the reports topic confirmed the result.

Usage: .venv/bin/python tests/benchmarks/bench_reports.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from connectors import report_definitions  # noqa: E402
from connectors.kafka import ConfirmingProducer, ensure_topics  # noqa: E402
from connectors.settings import Settings  # noqa: E402
from infra import kafka_local  # noqa: E402
from schemas import serde  # noqa: E402
from schemas.beliefs import Sensor  # noqa: E402
from schemas.report_definition import build_definition  # noqa: E402
from schemas.reporters import load_parameters  # noqa: E402
from streams import runtime  # noqa: E402
from streams.sql.access import query_rows  # noqa: E402

DIST = REPO / "data" / "kafka-dist"
T0 = datetime(2015, 1, 1, tzinfo=UTC)  # readings lie in the past
SENSORS = [
    Sensor(name="pv", unit="kW", event_resolution="PT15M"),
    Sensor(name="load", unit="kW", event_resolution="PT15M"),
    Sensor(name="net", unit="kWh", event_resolution="PT1H"),
]


def _batch(sensor: str, start: datetime, n: int, value: float) -> bytes:
    rec = {
        "sensor": sensor,
        "start": start,
        "resolution_ms": 900_000,
        "values": [value + (j % 7) * 0.1 for j in range(n)],
        "source": "meter",
    }
    return serde.encode("BeliefBatch", rec)


class Run:
    """One worker with its own topics and data folder."""

    def __init__(self, bootstrap: str, root: Path, report: bool) -> None:
        self.bootstrap = bootstrap
        self.prefix = f"bench{uuid.uuid4().hex[:6]}."
        self.data = root / self.prefix
        self.data.mkdir(parents=True)
        sensors = self.data / "sensors.yaml"
        sensors.write_text(
            yaml.safe_dump([s.model_dump(mode="json", by_alias=True) for s in SENSORS])
        )
        self.port = kafka_local.free_port()
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "FLEXSTREAM_TOPIC_PREFIX": self.prefix,
            "FLEXSTREAM_DATA_DIR": str(self.data),
            "FLEXSTREAM_WORKER_WEB_PORT": str(self.port),
            "FLEXSTREAM_WORKER_CLICKHOUSE_PORT": "0",
            "FLEXSTREAM_WORKER_SENSORS_FILE": str(sensors),
        }
        ensure_topics({"bootstrap.servers": bootstrap}, self.prefix)
        saved = dict(os.environ)
        os.environ.update(self.env)
        self.settings = Settings()
        os.environ.clear()
        os.environ.update(saved)
        self.producer = ConfirmingProducer({"bootstrap.servers": bootstrap})
        if report:
            params = load_parameters(
                {
                    "input": [{"name": "pv", "sensor": "pv"}, {"name": "load", "sensor": "load"}],
                    "output": [{"name": "net", "sensor": "net"}],
                    "window": "PT1H",
                }
            )
            defn = build_definition("net", "AggregatorReporter", {}, params, "PT0M", "PT10M")
            report_definitions.publish(
                self.producer, self.prefix + report_definitions.TOPIC, [defn]
            )
        self.proc = runtime.spawn_worker(self.env, self.data / "worker.log")
        runtime.wait_worker_ready(self.data, self.proc, timeout=120)

    def count(self, where: str) -> int:
        """Distinct (sensor, event) pairs: a recomputed window counts once."""
        sql = f"SELECT uniqExact(sensor, event_start) FROM flexstream.beliefs WHERE {where}"
        return int(query_rows(self.settings, sql)[1][0][0])

    def wait(self, where: str, n: int, timeout: float = 900) -> None:
        deadline = time.monotonic() + timeout
        while self.count(where) < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {n} rows where {where}")
            time.sleep(0.02)

    def publish(self, msgs: list[tuple[str, bytes]]) -> None:
        for key, value in msgs:
            self.producer.send(self.prefix + "readings.meter", value, key=key)
        self.producer.flush()

    def stats(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/reports/", timeout=5) as r:
            return json.loads(r.read())

    def stop(self) -> None:
        runtime.stop_process(self.proc)


def throughput(run: Run, days: int, report: bool) -> float:
    msgs = []
    for d in range(days):
        for sensor, v in (("pv", -2.0), ("load", 3.0)):
            msgs.append((sensor, _batch(sensor, T0 + timedelta(days=d), 96, v)))
    t = time.perf_counter()
    run.publish(msgs)
    run.wait("sensor IN ('pv', 'load')", days * 96 * 2)
    if report:
        # every hourly window: the watermarks reach the end of the last one (grace PT0M)
        run.wait("sensor = 'net'", days * 24)
    return days * 96 * 2 / (time.perf_counter() - t)


def latency(run: Run, start: datetime, hours: int) -> tuple[list[float], list[float]]:
    e2e = []
    done = run.count("sensor = 'net'")
    for h in range(hours):
        t_hour = start + timedelta(hours=h)
        # the first 45 minutes of both inputs: no window closes (the previous one already did)
        run.publish(
            [("pv", _batch("pv", t_hour, 3, -2.0)), ("load", _batch("load", t_hour, 3, 3.0))]
        )
        run.wait("sensor IN ('pv', 'load') AND event_start >= " + _ts(t_hour), 6, timeout=60)
        assert run.count("sensor = 'net'") == done
        t = time.perf_counter()
        # the last quarter: both watermarks reach the hour's end and its window closes
        q = t_hour + timedelta(minutes=45)
        run.publish([("pv", _batch("pv", q, 1, -2.0)), ("load", _batch("load", q, 1, 3.0))])
        done += 1
        run.wait("sensor = 'net'", done, timeout=60)
        e2e.append((time.perf_counter() - t) * 1000)
    internal = run.stats()["net"]["latency_ms"][-hours:]
    return e2e, internal


def _ts(t: datetime) -> str:
    return f"toDateTime64('{t:%Y-%m-%d %H:%M:%S}', 6, 'UTC')"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer days and repetitions")
    ap.add_argument(
        "--py-spy",
        metavar="FILE",
        help="profile the reporting worker's throughput run with py-spy (collapsed stacks)",
    )
    args = ap.parse_args()
    days = 60 if args.quick else 365
    hours = 10 if args.quick else 30
    kafka_local.fetch_jars(DIST)
    root = Path(tempfile.mkdtemp(prefix="flexstream-bench-reports-"))
    bdir = root / "broker"
    info = kafka_local.start(
        bdir, DIST, port=kafka_local.free_port(), controller_port=kafka_local.free_port()
    )
    runs: list[Run] = []
    try:
        plain = Run(info.bootstrap, root, report=False)
        runs.append(plain)
        base = throughput(plain, days, report=False)
        plain.stop()
        with_report = Run(info.bootstrap, root, report=True)
        runs.append(with_report)
        spy = None
        if args.py_spy:
            spy = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--format", "raw"]
                + ["-o", args.py_spy, "-r", "200", "-p", str(with_report.proc.pid)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
        rep = throughput(with_report, days, report=True)
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
        stats = with_report.stats()["net"]
        e2e, internal = latency(with_report, T0 + timedelta(days=days), hours)
        with_report.stop()
    finally:
        for r in runs:
            r.stop()
        kafka_local.stop(bdir)
        shutil.rmtree(root, ignore_errors=True)
    n = days * 96 * 2
    print(f"readings/s, one worker, {n} readings (pv + load, 15 min, {days} days), to ClickHouse:")
    print(f"  without a report:                         {base:>10,.0f}")
    print(f"  through an hourly AggregatorReporter:     {rep:>10,.0f}  ({rep / base:.2f}x)")
    print(f"  hourly windows closed: {stats['closed']}, recomputed: {stats['recomputed']}")
    print(f"\nwindow close -> report, {hours} windows (ms): median, min, max")
    print(
        f"  end to end (publish of the closing reading -> report row in ClickHouse): "
        f"{statistics.median(e2e):.0f}, {min(e2e):.0f}, {max(e2e):.0f}"
    )
    print(
        f"  in the worker (close decision -> reports topic confirmed):               "
        f"{statistics.median(internal):.0f}, {min(internal):.0f}, {max(internal):.0f}"
    )
    print(
        json.dumps(
            {
                "readings_per_s": {"no_report": base, "hourly_report": rep},
                "close_to_report_ms": {
                    "end_to_end_median": statistics.median(e2e),
                    "worker_median": statistics.median(internal),
                },
            }
        )
    )


if __name__ == "__main__":
    main()
