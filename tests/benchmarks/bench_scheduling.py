"""Benchmark of the streaming scheduler, on the real broker, one worker, the embedded engine.

Prints, measured side by side in one run:

- latency from a schedule request produced to its schedule consumed (p50, p99),
  one battery at 15 minutes over 2 days, through the SDK's trigger_and_get_schedule;
- latency from a new price batch produced to the re-planned schedule consumed;
- belief-state throughput: readings per second, batched messages (96 values),
  for events inside the state's window (so every reading updates the state),
  publish -> rows visible in ClickHouse.

With ``--brokers 3`` the same runs on a local three-node KRaft cluster
(replication 3, two in sync) instead of one broker. With ``--split`` two
workers share the work: one with the ingest role (readings, and the schedules
from their topic into ClickHouse) and one with the schedule role (no store);
it also prints the time from a schedule consumed to its beliefs in ClickHouse.
With ``--scale-out`` it measures instead schedule requests answered per
second by 1, 2 and 3 scheduling workers sharing the sites (site partitions;
``site_scaling.py``), on one broker or the cluster.

Usage: .venv/bin/python tests/benchmarks/bench_scheduling.py [--quick] [--brokers N] [--split]
[--scale-out]
"""

from __future__ import annotations

import argparse
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

from connectors import registry  # noqa: E402
from connectors.kafka import ConfirmingProducer, ensure_topics  # noqa: E402
from connectors.sdk import FlexStreamClient  # noqa: E402
from connectors.settings import Settings  # noqa: E402
from infra import kafka_local  # noqa: E402
from schemas.assets import Asset  # noqa: E402
from schemas.beliefs import Sensor  # noqa: E402
from streams import runtime  # noqa: E402
from streams.scheduling.agent import floor_time  # noqa: E402
from streams.sql.access import query_rows  # noqa: E402

DIST = REPO / "data" / "kafka-dist"
STEP = timedelta(minutes=15)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def _broker_pid(info: object) -> int:
    """The process of the (first) broker, for CPU accounting."""
    brokers = getattr(info, "brokers", None)
    return brokers[0].pid if brokers else info.pid  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--brokers", type=int, default=1, help="1, or a local cluster of N nodes")
    ap.add_argument("--split", action="store_true", help="an ingest and a schedule worker")
    ap.add_argument(
        "--scale-out", action="store_true", help="only: requests/s with 1, 2, 3 scheduling workers"
    )
    args = ap.parse_args()
    n_req = 30 if args.quick else 200
    n_replan = 10 if args.quick else 50
    n_batches = 300 if args.quick else 1500
    kafka_local.fetch_jars(DIST)
    root = Path(tempfile.mkdtemp(prefix="flexstream-bench-sched-"))
    bdir = root / "broker"
    if args.brokers > 1:
        ports = [(kafka_local.free_port(), kafka_local.free_port()) for _ in range(args.brokers)]
        info = kafka_local.start_cluster(bdir, DIST, nodes=args.brokers, ports=ports, heap_mb=384)
    else:
        info = kafka_local.start(
            bdir, DIST, port=kafka_local.free_port(), controller_port=kafka_local.free_port()
        )
    print(f"Kafka: {args.brokers} node(s) at {info.bootstrap}")
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": info.bootstrap,
        "FLEXSTREAM_TOPIC_PREFIX": prefix,
        "FLEXSTREAM_DATA_DIR": str(root / "worker"),
        "FLEXSTREAM_WORKER_WEB_PORT": str(kafka_local.free_port()),
        "FLEXSTREAM_WORKER_CLICKHOUSE_PORT": "0",
    }
    saved = dict(os.environ)
    os.environ.update(env)
    settings = Settings()
    os.environ.clear()
    os.environ.update(saved)
    ensure_topics(
        {"bootstrap.servers": info.bootstrap}, prefix, replication_factor=min(3, args.brokers)
    )
    proc = sched = None
    try:
        if args.scale_out:
            from tests.benchmarks import site_scaling

            site_scaling.report(info.bootstrap, _broker_pid(info), root, args.quick)
            return
        sensors = [
            Sensor(name="bat", unit="kW", event_resolution=STEP),
            Sensor(name="bat-soc", unit="kWh", event_resolution=timedelta(0)),
            Sensor(name="price", unit="EUR/MWh", event_resolution=timedelta(hours=1)),
            Sensor(name="load", unit="kW", event_resolution=STEP),
        ]
        site = {"consumption-price": {"sensor": "price"}}
        model = {
            "sensor": "bat",
            "soc-at-start": {"sensor": "bat-soc"},
            "soc-min": "1 kWh",
            "soc-max": "10 kWh",
            "power-capacity": "5 kW",
            "roundtrip-efficiency": "90%",
        }
        assets = [
            Asset.model_validate({"name": "home", "flex-context": site, "flex-model": model}),
            Asset.model_validate(
                {
                    "name": "home-replan",
                    "flex-context": site,
                    "flex-model": model,
                    "replan": {"on-new-prices": True, "duration": "P2D", "debounce": "PT0S"},
                }
            ),
        ]
        registry.publish(
            ConfirmingProducer({"bootstrap.servers": info.bootstrap}),
            prefix + "registry",
            [*sensors, *assets],
        )
        if args.split:
            env["FLEXSTREAM_WORKER_ROLES"] = "ingest"
            sched_env = {
                **env,
                "FLEXSTREAM_WORKER_ROLES": "schedule",
                "FLEXSTREAM_DATA_DIR": str(root / "scheduler"),
                "FLEXSTREAM_WORKER_WEB_PORT": str(kafka_local.free_port()),
            }
            sched = runtime.spawn_worker(sched_env, root / "scheduler.log")
            runtime.wait_worker_ready(root / "scheduler", sched, timeout=120)
        proc = runtime.spawn_worker(env, root / "worker.log")
        runtime.wait_worker_ready(root / "worker", proc, timeout=120)
        now = datetime.now(UTC)
        t0 = floor_time(now, STEP)
        day0 = floor_time(now, timedelta(hours=1))
        with FlexStreamClient(info.bootstrap, topic_prefix=prefix) as client:
            values = [50 + 40 * ((h % 24) in (17, 18, 19)) for h in range(60)]
            client.publish_readings(
                "price",
                day0,
                timedelta(hours=1),
                values,
                source="epex",
                belief_time=now,
                topic="price",
            )
            client.publish_reading("bat-soc", t0, 5.0, resolution=timedelta(0), source="bms")
            time.sleep(2.0)  # the re-plan these trigger is not measured
            lat = []
            stored = []
            for i in range(n_req):
                t = time.perf_counter()
                [ans] = client.trigger_and_get_schedule(
                    "home", t0, timedelta(days=2), STEP, timeout=30
                )
                lat.append((time.perf_counter() - t) * 1000)
                assert ans.status == "optimal", ans.message
                if i % 5 == 0:  # consumed -> its 192 powers in ClickHouse, polled every 10 ms
                    t = time.perf_counter()
                    sql = (
                        "SELECT count() FROM flexstream.beliefs WHERE sensor = 'bat' AND "
                        "source = 'flexstream-scheduler' AND belief_time = "
                        f"toDateTime64('{ans.belief_time:%Y-%m-%d %H:%M:%S.%f}', 6, 'UTC')"
                    )
                    while query_rows(settings, sql)[1][0][0] < 192:
                        time.sleep(0.01)
                    stored.append((time.perf_counter() - t) * 1000)
            solver = []
            replan = []
            with client.subscribe_schedules(["bat"], timeout=30) as sub:
                for i in range(n_replan):
                    vals = [50 + i + 40 * ((h % 24) in (17, 18, 19)) for h in range(60)]
                    t = time.perf_counter()
                    client.publish_readings(
                        "price",
                        day0,
                        timedelta(hours=1),
                        vals,
                        source="epex",
                        belief_time=datetime.now(UTC),
                        topic="price",
                    )
                    for s in sub:
                        if s.origin == "replan" and s.asset == "home-replan":
                            replan.append((time.perf_counter() - t) * 1000)
                            solver.append(s.solver_time_ms)
                            break
        # Belief-state throughput: recent days, so every reading enters the state.
        producer = ConfirmingProducer({"bootstrap.servers": info.bootstrap})
        from schemas import serde

        start = floor_time(now - timedelta(days=6), timedelta(days=1))
        msgs = []
        for i in range(n_batches):
            rec = {
                "sensor": "load",
                "start": start + (i % 6) * timedelta(days=1),
                "resolution_ms": 900_000,
                "values": [float(i)] * 96,
                "source": f"m{i}",
            }
            msgs.append(serde.encode("BeliefBatch", rec))
        t = time.perf_counter()
        for m in msgs:
            producer.send(prefix + "readings.meter", m, key="load")
        producer.flush()
        total = n_batches * 96
        sql = "SELECT count() FROM flexstream.beliefs WHERE sensor = 'load'"
        while query_rows(settings, sql)[1][0][0] < total:
            time.sleep(0.05)
        rate = total / (time.perf_counter() - t)
        workers = "an ingest and a schedule worker" if args.split else "one worker"
        print(f"one battery, 15-minute steps over 2 days (192 steps), {workers}:")
        print(
            f"  request -> schedule consumed ({n_req} requests): "
            f"p50 {statistics.median(lat):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, "
            f"max {max(lat):.1f} ms"
        )
        print(
            f"  new price batch -> re-planned schedule consumed ({len(replan)} re-plans): "
            f"p50 {statistics.median(replan):.1f} ms, p99 {pct(replan, 0.99):.1f} ms"
        )
        print(f"  solver time inside the worker: median {statistics.median(solver):.1f} ms")
        print(
            f"  schedule consumed -> its beliefs in ClickHouse ({len(stored)} schedules, "
            f"through the ingest role): p50 {statistics.median(stored):.1f} ms, "
            f"max {max(stored):.1f} ms"
        )
        print(
            f"  targets: p50 < 100 ms -> request {statistics.median(lat) / 100:.2f}x, "
            f"re-plan {statistics.median(replan) / 100:.2f}x of target; p99 < 500 ms -> "
            f"request {pct(lat, 0.99) / 500:.2f}x, re-plan {pct(replan, 0.99) / 500:.2f}x"
        )
        print(
            f"belief state: {total} readings in {n_batches} batched messages (96 values), "
            f"inside the state window: {rate:,.0f} readings/s publish -> ClickHouse"
        )
    finally:
        for p in (proc, sched):
            if p is not None:
                runtime.stop_process(p)
        if args.brokers > 1:
            kafka_local.stop_cluster(bdir)
        else:
            kafka_local.stop(bdir)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
