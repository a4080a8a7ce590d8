"""Benchmark of the pipeline: broker start, and readings/s publish -> ClickHouse against peers.

Prints medians over repetitions, measured side by side in one run, on the real
broker and the embedded engine:

- broker start: cold (format + start, jars already fetched) and warm restart;
- readings/s from the first publish to the last row written to ClickHouse, for
  batched messages (96 values each) and single-reading messages, each for old
  data (2015, outside the worker's rolling belief state) and live data (events
  in the last day, belief time now, inside it), with their live/old ratio;
- beside the worker, the same work on the same broker and the same messages by
  peers (:mod:`bench_peers`): a Quix Streams application and a plain
  confluent-kafka consume loop, each decoding, validating, inserting per batch
  into its own embedded engine and committing after the write; with the ratios
  FlexStream / Quix and FlexStream / plain.

Messages are keyed by sensor and spread round-robin over ``SENSORS`` sensors
of 15-minute resolution: message ``i`` is for sensor ``i % SENSORS`` and its
``i // SENSORS``-th slot (single: a 15-minute event; batched: a day of 96).
Live slots wrap within the day before now, so a batched live message restates
its sensor's last day with a newer belief time, as a forecast update does.

The worker's end is seen by polling its ``/health/`` count of written beliefs
(every 20 ms); a peer reports each write with its time. Quix Streams pins
confluent-kafka<2.13 and pydantic<2.14, older than the project's environment
holds, so it runs from an environment of its own layered over the project's:
``data/bench-env`` (made on first use with pip, from the ``bench`` extra's
requirement), or pass ``--quix-python``.

Usage: .venv/bin/python tests/benchmarks/bench_pipeline.py [--quick] [--engines E,..]
[--modes batched,single] [--ages old,live] [--keep] [--py-spy FILE]
(``--py-spy`` records the worker's profile during the measured runs.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import site
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from connectors.kafka import ConfirmingProducer, ensure_topics  # noqa: E402
from infra import kafka_local  # noqa: E402
from schemas import serde  # noqa: E402
from schemas.beliefs import Sensor  # noqa: E402
from streams import runtime  # noqa: E402

DIST = REPO / "data" / "kafka-dist"
BENCH_ENV = REPO / "data" / "bench-env"
PEERS = Path(__file__).with_name("bench_peers.py")
T0 = datetime(2015, 1, 1, tzinfo=UTC)  # old readings lie far in the past
SENSORS = 250
STEP = timedelta(minutes=15)
ENGINES = ("flexstream", "quix", "plain")
LABEL = {"flexstream": "FlexStream", "quix": "Quix", "plain": "plain"}


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


def sensor_name(i: int) -> str:
    return f"load-{i % SENSORS:03d}"


def build_messages(mode: str, age: str, n_readings: int, source: str) -> list[tuple[str, bytes]]:
    """The messages of one run (see the module docstring for their layout)."""
    now = datetime.now(UTC)
    day_before = now - (now - T0) % STEP - timedelta(days=1)  # 96 slots that ended by now
    out = []
    if mode == "batched":
        for i in range(n_readings // 96):
            rec = {
                "sensor": sensor_name(i),
                "start": T0 + timedelta(days=i // SENSORS) if age == "old" else day_before,
                "resolution_ms": 900_000,
                "values": [float(i + j) for j in range(96)],
                "source": source,
            }
            if age == "live":
                rec["belief_time"] = now + timedelta(microseconds=i)
            out.append((rec["sensor"], serde.encode("BeliefBatch", rec)))
    else:
        for i in range(n_readings):
            slot = i // SENSORS
            rec = {
                "sensor": sensor_name(i),
                "event_start": T0 + slot * STEP if age == "old" else day_before + slot % 96 * STEP,
                "event_resolution_ms": 900_000,
                "event_value": float(i),
                "source": source,
            }
            if age == "live":
                rec["belief_time"] = now + timedelta(microseconds=i)
            out.append((rec["sensor"], serde.encode("Belief", rec)))
    return out


@dataclass
class Peer:
    """A peer process and the rows it reported written (with the time of the last write)."""

    engine: str
    topic: str
    proc: subprocess.Popen
    rows: int = 0
    at: float = 0.0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def follow(self) -> None:
        """Read the peer's reports (a thread)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "rows":
                with self.cond:
                    self.rows, self.at = int(parts[1]), float(parts[2])
                    self.cond.notify_all()

    def wait_rows(self, target: int, timeout: float) -> float:
        """Wait until ``target`` rows are written; return the monotonic time of that write."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.rows < target:
                if self.proc.poll() is not None:
                    raise SystemExit(f"the {self.engine} peer exited ({self.proc.returncode})")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"the {self.engine} peer wrote {self.rows} of {target} rows")
                self.cond.wait(min(left, 1.0))
            return self.at


def quix_python(explicit: str | None) -> str:
    """An interpreter that has Quix Streams, making ``data/bench-env`` if need be."""
    if explicit:
        return explicit
    check = [sys.executable, "-c", "import quixstreams"]
    if subprocess.run(check, capture_output=True).returncode == 0:
        return sys.executable
    py = BENCH_ENV / "bin" / "python"
    if not py.exists():
        print(f"making {BENCH_ENV} (Quix Streams over the project's environment) ...", flush=True)
        base = Path(sys.base_prefix) / "bin" / "python3"
        subprocess.run([str(base), "-m", "venv", str(BENCH_ENV)], check=True)
        requirement = next(
            r for r in _bench_extra() if r.replace("-", "").lower().startswith("quixstreams")
        )
        subprocess.run([str(py), "-m", "pip", "install", "-q", requirement], check=True)
        # Everything else (chdb, numpy, fastavro, ...) comes from the project's environment,
        # after Quix's own pins.
        layered = subprocess.run(
            [str(py), "-c", "import site; print(site.getsitepackages()[0])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        Path(layered, "zz-project-env.pth").write_text(site.getsitepackages()[0] + "\n")
    return str(py)


def _bench_extra() -> list[str]:
    import tomllib

    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    return list(meta["project"]["optional-dependencies"].get("bench", ["quixstreams>=3"]))


def start_peer(
    engine: str, python: str, bootstrap: str, topic: str, root: Path, sensors: Path
) -> Peer:
    data = root / f"peer-{engine}"
    data.mkdir(parents=True, exist_ok=True)
    cmd = [
        python,
        str(PEERS),
        engine,
        "--bootstrap",
        bootstrap,
        "--topic",
        topic,
        "--group",
        f"bench-{engine}-{uuid.uuid4().hex[:6]}",
        "--data-dir",
        str(data),
        "--sensors-file",
        str(sensors),
    ]
    err = open(data / "peer.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=err,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    err.close()
    peer = Peer(engine, topic, proc)
    threading.Thread(target=peer.follow, daemon=True).start()
    return peer


def worker_written(web_port: int) -> int:
    """Beliefs the worker has written to ClickHouse so far."""
    with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/health/", timeout=5) as resp:
        return int(json.loads(resp.read())["written"])


def publish(producer: ConfirmingProducer, topic: str, msgs: list[tuple[str, bytes]]) -> float:
    """Publish ``msgs`` and wait for the broker's confirmation; return the seconds it took."""
    t = time.perf_counter()
    for key, value in msgs:
        producer.send(topic, value, key=key)
    producer.flush()
    return time.perf_counter() - t


def run_once(
    engine: str,
    msgs: list[tuple[str, bytes]],
    n: int,
    producer: ConfirmingProducer,
    worker_topic: str,
    web_port: int,
    peers: dict[str, Peer],
    timeout: float = 300.0,
) -> tuple[float, float]:
    """Publish ``msgs`` to ``engine`` and wait for ``n`` rows: (publish/s, end-to-end/s)."""
    if engine == "flexstream":
        before = worker_written(web_port)
        t = time.monotonic()
        pub = publish(producer, worker_topic, msgs)
        deadline = t + timeout
        while worker_written(web_port) - before < n:
            if time.monotonic() > deadline:
                raise SystemExit(f"the worker did not write {n} readings in {timeout:.0f} s")
            time.sleep(0.02)
        end = time.monotonic()
    else:
        peer = peers[engine]
        target = peer.rows + n
        t = time.monotonic()
        pub = publish(producer, peer.topic, msgs)
        end = peer.wait_rows(target, timeout)
    return n / pub, n / (end - t)


def bench_throughput(
    bootstrap: str,
    root: Path,
    plan: dict[str, tuple[int, int]],
    ages: list[str],
    engines: list[str],
    quix_py: str | None,
    py_spy: Path | None = None,
) -> dict[tuple[str, str, str], list[tuple[float, float]]]:
    prefix = f"bench{uuid.uuid4().hex[:6]}."
    data = root / "worker"
    sensors = root / "sensors.yaml"
    sensors.write_text(
        yaml.safe_dump(
            [
                Sensor(name=sensor_name(i), unit="kW", event_resolution="PT15M").model_dump(
                    mode="json", by_alias=True
                )
                for i in range(SENSORS)
            ]
        )
    )
    web_port = kafka_local.free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "FLEXSTREAM_TOPIC_PREFIX": prefix,
        "FLEXSTREAM_DATA_DIR": str(data),
        "FLEXSTREAM_WORKER_WEB_PORT": str(web_port),
        "FLEXSTREAM_WORKER_CLICKHOUSE_PORT": "0",
        "FLEXSTREAM_WORKER_SENSORS_FILE": str(sensors),
    }
    ensure_topics({"bootstrap.servers": bootstrap}, prefix)
    peer_topics = {e: f"{prefix}peer.{e}" for e in engines if e != "flexstream"}
    if peer_topics:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        futs = admin.create_topics([NewTopic(t, 3, 1) for t in peer_topics.values()])
        for fut in futs.values():
            fut.result(30)
    procs: list[subprocess.Popen] = []
    spy_proc: subprocess.Popen | None = None
    peers: dict[str, Peer] = {}
    results: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    try:
        if "flexstream" in engines:
            proc = runtime.spawn_worker(env, data / "worker.log")
            procs.append(proc)
            runtime.wait_worker_ready(data, proc, timeout=120)
        for engine, topic in peer_topics.items():
            python = quix_python(quix_py) if engine == "quix" else sys.executable
            peers[engine] = start_peer(engine, python, bootstrap, topic, root, sensors)
            procs.append(peers[engine].proc)
        # One producer for every run (connected once); warm up every engine (consumer
        # assignment, first inserts) before measuring.
        producer = ConfirmingProducer({"bootstrap.servers": bootstrap})
        warm = build_messages("batched", "old", 96 * 10, "warm-up")
        for engine in engines:
            run_once(engine, warm, 960, producer, prefix + "readings.meter", web_port, peers)
        if py_spy and "flexstream" in engines:
            spy = [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))]
            spy += ["record", "-p", str(procs[0].pid), "-o", str(py_spy), "-f", "raw"]
            spy += ["-r", "100", "--nonblocking"]
            spy_proc = subprocess.Popen(spy, stdout=subprocess.DEVNULL, start_new_session=True)
        reps = max(r for _, r in plan.values())
        for rep in range(reps):
            for mode, (n, mode_reps) in plan.items():
                if rep >= mode_reps:
                    continue
                for age in ages:
                    source = f"{mode}-{age}-{uuid.uuid4().hex[:6]}"
                    msgs = build_messages(mode, age, n, source)
                    for engine in engines:
                        r = run_once(
                            engine, msgs, n, producer, prefix + "readings.meter", web_port, peers
                        )
                        results.setdefault((mode, age, engine), []).append(r)
                        print(
                            f"  run {rep + 1}: {mode:<8}{age:<5}{LABEL[engine]:<11}"
                            f"{r[1]:>12,.0f} readings/s",
                            flush=True,
                        )
    finally:
        if spy_proc is not None:  # py-spy writes its output when interrupted
            spy_proc.send_signal(signal.SIGINT)
            spy_proc.wait(60)
        for proc in procs:
            runtime.stop_process(proc)
    return results


def report(
    res: dict[tuple[str, str, str], list[tuple[float, float]]],
    plan: dict[str, tuple[int, int]],
    ages: list[str],
    engines: list[str],
) -> dict:
    med: dict[tuple[str, str, str], float] = {
        k: statistics.median(r[1] for r in rows) for k, rows in res.items()
    }
    pub: dict[tuple[str, str], float] = {}
    for (mode, age, _), rows in res.items():
        pub.setdefault((mode, age), statistics.median(r[0] for r in rows))
    print(
        "\nreadings/s, publish -> rows written to ClickHouse, one consumer each "
        "(median of runs; same broker, same messages):"
    )
    head = f"  {'mode':<9}{'data':<6}{'readings':>9}{'runs':>5}{'publish/s':>11}"
    head += "".join(f"{LABEL[e]:>12}" for e in engines)
    ratios = [e for e in engines if e != "flexstream"] if "flexstream" in engines else []
    head += "".join(f"{'Flex/' + LABEL[e]:>12}" for e in ratios)
    print(head)
    for mode, (n, reps) in plan.items():
        for age in ages:
            line = f"  {mode:<9}{age:<6}{n:>9}{reps:>5}{pub.get((mode, age), 0):>11,.0f}"
            line += "".join(f"{med.get((mode, age, e), 0):>12,.0f}" for e in engines)
            line += "".join(
                f"{med[(mode, age, 'flexstream')] / med[(mode, age, e)]:>11.2f}x" for e in ratios
            )
            print(line)
    if len(ages) < 2:
        return {f"{m}/{a}/{e}": v for (m, a, e), v in med.items()}
    print("\nlive / old ratio (readings/s of live data over old data):")
    for mode in plan:
        cells = [
            f"{LABEL[e]} {med[(mode, 'live', e)] / med[(mode, 'old', e)]:.2f}x" for e in engines
        ]
        print(f"  {mode:<9}" + ", ".join(cells))
    return {f"{m}/{a}/{e}": v for (m, a, e), v in med.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions and readings")
    ap.add_argument(
        "--engines",
        default=",".join(ENGINES),
        help=f"comma-separated subset of {','.join(ENGINES)}",
    )
    ap.add_argument("--modes", default="batched,single", help="comma-separated: batched,single")
    ap.add_argument("--ages", default="old,live", help="comma-separated: old,live")
    ap.add_argument("--quix-python", help="an interpreter that has quixstreams installed")
    ap.add_argument("--skip-broker-start", action="store_true", help="no broker start timing")
    ap.add_argument("--keep", action="store_true", help="keep the data folder (logs) at the end")
    ap.add_argument(
        "--py-spy", type=Path, help="record the worker's profile during the runs (raw format)"
    )
    args = ap.parse_args()
    engines = [e for e in ENGINES if e in args.engines.split(",")]
    reps = 2 if args.quick else 5
    plan = {
        "batched": (96 * 1000 if args.quick else 96 * 5200, reps),
        "single": (5_000 if args.quick else 20_000, reps),
    }
    plan = {m: p for m, p in plan.items() if m in args.modes.split(",")}
    ages = [a for a in ("old", "live") if a in args.ages.split(",")]
    kafka_local.fetch_jars(DIST)
    root = Path(tempfile.mkdtemp(prefix="flexstream-bench-"))
    out: dict = {}
    try:
        if not args.skip_broker_start:
            cold, warm = bench_broker(root, min(reps, 3))
            out.update(broker_cold_s=statistics.median(cold), broker_warm_s=statistics.median(warm))
            print(f"Kafka {kafka_local.KAFKA_VERSION} broker start (to metadata round trip):")
            for name, xs in (("first start (format + start)", cold), ("restart", warm)):
                print(
                    f"  {name + ':':<30} median {statistics.median(xs):.2f} s "
                    f"(min {min(xs):.2f}, max {max(xs):.2f}, {len(xs)} runs)"
                )
        bdir = root / "broker"
        info = kafka_local.start(
            bdir, DIST, port=kafka_local.free_port(), controller_port=kafka_local.free_port()
        )
        try:
            res = bench_throughput(
                info.bootstrap, root, plan, ages, engines, args.quix_python, args.py_spy
            )
        finally:
            kafka_local.stop(bdir)
        out["readings_per_s"] = report(res, plan, ages, engines)
        print(json.dumps(out))
    finally:
        if args.keep:
            print(f"data and logs kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
