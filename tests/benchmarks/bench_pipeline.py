"""Benchmark of the walking skeleton: broker start, readings per second publish -> ClickHouse.

Prints medians over repetitions, measured side by side in one run, on the real
broker and the embedded engine with one worker:

- broker start: cold (format + start, jars already fetched) and warm restart;
- readings/s from the first publish to the last row visible in ClickHouse, for
  batched messages (96 values each) and for single-reading messages.

Usage: .venv/bin/python tests/benchmarks/bench_pipeline.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from connectors.kafka import ConfirmingProducer, ensure_topics  # noqa: E402
from connectors.settings import Settings  # noqa: E402
from infra import kafka_local  # noqa: E402
from schemas import serde  # noqa: E402
from schemas.beliefs import Sensor  # noqa: E402
from streams import runtime  # noqa: E402
from streams.sqlaccess import query_rows  # noqa: E402

DIST = REPO / "data" / "kafka-dist"
T0 = datetime(2015, 1, 1, tzinfo=UTC)  # readings lie in the past


def bench_broker(root: Path, reps: int) -> tuple[list[float], list[float]]:
    cold, warm = [], []
    for _ in range(reps):
        d = root / f"broker-{uuid.uuid4().hex[:6]}"
        ports = dict(port=kafka_local.free_port(), controller_port=kafka_local.free_port())
        t = time.perf_counter()
        kafka_local.start(d, DIST, **ports)
        cold.append(time.perf_counter() - t)
        kafka_local.stop(d)
        t = time.perf_counter()
        kafka_local.start(d, DIST, **ports)
        warm.append(time.perf_counter() - t)
        kafka_local.stop(d)
        shutil.rmtree(d, ignore_errors=True)
    return cold, warm


def _messages(mode: str, n_readings: int, source: str) -> list[tuple[str, bytes]]:
    out = []
    if mode == "batched":
        for i in range(n_readings // 96):
            rec = {
                "sensor": "load",
                "start": T0 + timedelta(days=i),
                "resolution_ms": 900_000,
                "values": [float(j) for j in range(96)],
                "source": source,
            }
            out.append(("load", serde.encode("BeliefBatch", rec)))
    else:
        for i in range(n_readings):
            rec = {
                "sensor": "load",
                "event_start": T0 + timedelta(minutes=15 * i),
                "event_resolution_ms": 900_000,
                "event_value": float(i),
                "source": source,
            }
            out.append(("load", serde.encode("Belief", rec)))
    return out


def bench_throughput(bootstrap: str, root: Path, plan: dict[str, tuple[int, int]]) -> dict:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    data = root / "worker"
    sensors = root / "sensors.yaml"
    sensors.write_text(
        yaml.safe_dump(
            [
                Sensor(name="load", unit="kW", event_resolution="PT15M").model_dump(
                    mode="json", by_alias=True
                )
            ]
        )
    )
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FLEXSTREAM_TOPIC_PREFIX": prefix,
        "FLEXSTREAM_DATA_DIR": str(data),
        "FLEXSTREAM_WORKER_WEB_PORT": str(kafka_local.free_port()),
        "FLEXSTREAM_WORKER_SENSORS_FILE": str(sensors),
    }
    ensure_topics({"bootstrap.servers": bootstrap}, prefix)
    saved = dict(os.environ)
    os.environ.update(env)
    settings = Settings()
    os.environ.clear()
    os.environ.update(saved)
    proc = runtime.spawn_worker(env, data / "worker.log")
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        runtime.wait_worker_ready(data, proc, timeout=120)
        for mode, (n, reps) in plan.items():
            for _ in range(reps):
                source = f"{mode}-{uuid.uuid4().hex[:6]}"
                msgs = _messages(mode, n, source)
                producer = ConfirmingProducer({"bootstrap.servers": bootstrap})
                t = time.perf_counter()
                for key, value in msgs:
                    producer.send(prefix + "readings.meter", value, key=key)
                producer.flush()
                published = time.perf_counter() - t
                sql = f"SELECT count() FROM flexstream.beliefs WHERE source = '{source}'"
                deadline = time.monotonic() + 600
                while (landed := query_rows(settings, sql)[1][0][0]) < n:
                    if time.monotonic() > deadline:
                        raise SystemExit(f"only {landed} of {n} readings landed in 600 s")
                    time.sleep(0.05)
                total = time.perf_counter() - t
                results.setdefault(mode, []).append((n / published, n / total))
    finally:
        runtime.stop_process(proc)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and readings")
    args = ap.parse_args()
    reps = 2 if args.quick else 3
    plan = {
        "batched": (48_000 if args.quick else 192_000, reps),
        "single": (5_000 if args.quick else 20_000, reps),
    }
    kafka_local.fetch_jars(DIST)
    root = Path(tempfile.mkdtemp(prefix="flexstream-bench-"))
    try:
        cold, warm = bench_broker(root, reps)
        print(
            f"Kafka {kafka_local.KAFKA_VERSION} broker start (to metadata round trip), {reps} runs:"
        )
        print(
            f"  first start (format + start): median {statistics.median(cold):.2f} s "
            f"(min {min(cold):.2f}, max {max(cold):.2f})"
        )
        print(
            f"  restart on existing data:     median {statistics.median(warm):.2f} s "
            f"(min {min(warm):.2f}, max {max(warm):.2f})"
        )
        bdir = root / "broker"
        info = kafka_local.start(
            bdir, DIST, port=kafka_local.free_port(), controller_port=kafka_local.free_port()
        )
        try:
            res = bench_throughput(info.bootstrap, root, plan)
        finally:
            kafka_local.stop(bdir)
        print("\nreadings/s, one worker, publish -> rows visible in ClickHouse (median of runs):")
        print(f"  {'mode':<10}{'readings':>10}{'runs':>6}{'publish/s':>14}{'end-to-end/s':>15}")
        med = {}
        for mode, rows in res.items():
            pub = statistics.median(r[0] for r in rows)
            e2e = statistics.median(r[1] for r in rows)
            med[mode] = e2e
            print(f"  {mode:<10}{plan[mode][0]:>10}{len(rows):>6}{pub:>14,.0f}{e2e:>15,.0f}")
        print(f"\nbatched / single end-to-end ratio: {med['batched'] / med['single']:.1f}x")
        print(
            json.dumps(
                {
                    "broker_cold_s": statistics.median(cold),
                    "broker_warm_s": statistics.median(warm),
                    "readings_per_s": med,
                }
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
