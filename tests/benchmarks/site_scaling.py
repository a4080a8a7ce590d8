"""Schedule requests answered per second by 1, 2 and 3 scheduling workers (site partitions).

Used by ``bench_scheduling.py --scale-out``. For each worker count, on the same
broker but a fresh topic prefix: one ingest worker, ``k`` schedule-only
workers with ``FLEXSTREAM_WORKER_SITE_PARTITIONS=3``, the same sites (a
battery each, a shared day-ahead price), the same readings, a warm-up request
per site, then a burst of requests spread evenly over the sites, timed from
the first request produced to the last answer consumed.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from connectors import registry
from connectors.kafka import (
    ConfirmingProducer,
    ensure_topics,
    site_partition,
    site_topic_partitions,
)
from connectors.sdk import FlexStreamClient
from infra import kafka_local
from schemas import serde
from schemas.assets import Asset
from schemas.beliefs import Sensor
from schemas.times import floor_time
from streams import runtime

P = 3
STEP = timedelta(minutes=15)


def _sites(n: int) -> tuple[list[Any], list[str]]:
    names = [f"site{i:02d}" for i in range(n)]
    models: list[Any] = [Sensor(name="price", unit="EUR/MWh", event_resolution=timedelta(hours=1))]
    for i, s in enumerate(names):
        models += [
            Sensor(name=f"{s}-bat", unit="kW", event_resolution=STEP),
            Sensor(name=f"{s}-soc", unit="kWh", event_resolution=timedelta(0)),
        ]
        models.append(
            Asset.model_validate(
                {
                    "name": s,
                    "flex-context": {"consumption-price": {"sensor": "price"}},
                    "flex-model": {
                        "sensor": f"{s}-bat",
                        "soc-at-start": {"sensor": f"{s}-soc"},
                        "soc-min": "1 kWh",
                        "soc-max": f"{10 + i} kWh",
                        "power-capacity": "5 kW",
                        "roundtrip-efficiency": "90%",
                    },
                }
            )
        )
    return models, names


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy_seconds() -> float:
    """CPU seconds the whole machine spent busy so far, over every core (Linux /proc)."""
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(cpu) - cpu[3] - cpu[4]) / os.sysconf("SC_CLK_TCK")


def _owned(port: int) -> set[int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5) as resp:
        return set(json.loads(resp.read()).get("site_partitions", []))


def _answers(bootstrap: str, topic: str, want: set[str], timeout: float) -> int:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while not want <= seen:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(want - seen)} requests unanswered after {timeout} s")
            for m in c.consume(500, 0.05):
                if not m.error():
                    seen.add(serde.decode(m.value())[1]["request_id"])
    finally:
        c.close()
    return len(seen & want)


def run_one(
    bootstrap: str, broker_pid: int, root: Path, workers: int, n_sites: int, n_req: int, days: int
) -> tuple[float, dict[str, float]]:
    """Requests per second answered by ``workers`` scheduling workers (see the module).

    Also the CPU seconds per second of the burst: of the broker, the ingest
    worker, the scheduling workers together, and the whole machine.
    """
    prefix = f"scale{uuid.uuid4().hex[:6]}."
    ensure_topics({"bootstrap.servers": bootstrap}, prefix, partitions=site_topic_partitions(P))
    models, names = _sites(n_sites)
    registry.publish(
        ConfirmingProducer({"bootstrap.servers": bootstrap}), prefix + "registry", models
    )
    base = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FLEXSTREAM_TOPIC_PREFIX": prefix,
        "FLEXSTREAM_WORKER_SITE_PARTITIONS": str(P),
        "FLEXSTREAM_WORKER_CLICKHOUSE_PORT": "0",
    }
    procs = []
    try:
        ingest_dir = root / f"{prefix}ingest"
        env = {
            **base,
            "FLEXSTREAM_DATA_DIR": str(ingest_dir),
            "FLEXSTREAM_WORKER_WEB_PORT": str(kafka_local.free_port()),
            "FLEXSTREAM_WORKER_ROLES": "ingest",
        }
        procs.append(runtime.spawn_worker(env, ingest_dir / "worker.log"))
        runtime.wait_worker_ready(ingest_dir, procs[-1], timeout=120)
        ports = []
        for k in range(workers):
            d, port = root / f"{prefix}sched{k}", kafka_local.free_port()
            env = {
                **base,
                "FLEXSTREAM_DATA_DIR": str(d),
                "FLEXSTREAM_WORKER_WEB_PORT": str(port),
                "FLEXSTREAM_WORKER_ROLES": "schedule",
            }
            procs.append(runtime.spawn_worker(env, d / "worker.log"))
            runtime.wait_worker_ready(d, procs[-1], timeout=120)
            ports.append(port)
        deadline = time.monotonic() + 120
        while not (
            all(_owned(p) for p in ports) and set().union(*map(_owned, ports)) == set(range(P))
        ):
            if time.monotonic() > deadline:
                raise TimeoutError("the scheduling workers did not split the site partitions")
            time.sleep(0.5)
        now = datetime.now(UTC)
        t0 = floor_time(now, STEP)
        with FlexStreamClient(bootstrap, topic_prefix=prefix, check=False) as client:
            values = [50 + 40 * ((h % 24) in (17, 18, 19)) for h in range(24 * days + 2)]
            day0 = floor_time(now, timedelta(hours=1))
            client.publish_readings(
                "price", day0, timedelta(hours=1), values, source="epex", belief_time=now
            )
            for i, s in enumerate(names):
                client.publish_reading(
                    f"{s}-soc", t0, 2.0 + i % 5, resolution=timedelta(0), source="bms"
                )
            client.flush()
            time.sleep(3.0)  # the repartitioned beliefs reach the workers' states
            producer = ConfirmingProducer({"bootstrap.servers": bootstrap})
            topic = prefix + "schedule-requests"

            def burst(tag: str, n: int) -> set[str]:
                ids = set()
                for i in range(n):
                    site = names[i % len(names)]
                    rid = f"{tag}-{i}"
                    rec = {
                        "request_id": rid,
                        "asset": site,
                        "start": t0,
                        "duration_ms": days * 86_400_000,
                        "resolution_ms": int(STEP.total_seconds() * 1000),
                        "requested_at": datetime.now(UTC),
                    }
                    producer.send(
                        topic,
                        serde.encode("ScheduleRequest", rec),
                        key=site,
                        partition=site_partition(site, P),
                    )
                    ids.add(rid)
                producer.flush()
                return ids

            _answers(bootstrap, prefix + "schedules", burst("warm", len(names)), 120)
            pids = {"broker": [broker_pid], "ingest": [procs[0].pid]}
            pids["schedulers"] = [p.pid for p in procs[1:]]

            def cpu() -> dict[str, float]:
                out = {k: sum(map(_cpu_seconds, v)) for k, v in pids.items()}
                return {**out, "machine": _busy_seconds()}

            c0, t = cpu(), time.perf_counter()
            got = _answers(bootstrap, prefix + "schedules", burst("run", n_req), 300)
            took = time.perf_counter() - t
            c1 = cpu()
            return got / took, {k: (c1[k] - c0[k]) / took for k in c0}
    finally:
        for p in procs:
            runtime.stop_process(p)


def report(bootstrap: str, broker_pid: int, root: Path, quick: bool) -> None:
    """Print requests per second with 1, 2 and 3 scheduling workers, the ratios, CPU use."""
    n_sites, n_req, days = (6, 60, 2) if quick else (12, 240, 4)
    runs = {k: run_one(bootstrap, broker_pid, root, k, n_sites, n_req, days) for k in (1, 2, 3)}
    print(
        f"scale-out: {n_req} requests over {n_sites} sites (one battery each, {days} days "
        f"at 15 min), site partitions {P}, one ingest worker, {os.cpu_count()} cores:"
    )
    one = runs[1][0]
    for k, (r, cpu) in runs.items():
        print(
            f"  {k} scheduling worker(s): {r:.1f} requests/s ({r / one:.2f}x of one); "
            f"cores busy {cpu['machine']:.2f} (schedulers {cpu['schedulers']:.2f}, "
            f"ingest {cpu['ingest']:.2f}, broker {cpu['broker']:.2f})"
        )
