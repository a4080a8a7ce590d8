"""Peers of the worker's ingestion for the pipeline benchmark: the same work, other engines.

Each peer consumes one topic, decodes and validates every message as the worker
does (:func:`schemas.serde.decode`, :func:`schemas.beliefs.validate`), inserts
the beliefs into its own embedded ClickHouse engine in batches
(``insert_arrow`` of :meth:`BeliefColumns.to_arrow`, the worker's table) and
commits the offsets after the write. Engines:

- ``quix``: a Quix Streams application (a sink whose flush inserts; Quix commits
  after flushing its sinks, so a write is reported just before its commit).
  Quix Streams pins older confluent-kafka and pydantic than the project's
  environment holds, so it runs from its own environment layered over the
  project's (see ``bench_pipeline.py``).
- ``plain``: a confluent-kafka consume loop, the lower bound of the cost.

Batches hold up to ``--batch-max`` messages (the worker's ``batch_max``). The
plain loop takes what came within ``--batch-within`` seconds (the worker's
``batch_within``) and commits after every write. Quix writes at its checkpoints
(it flushes its sinks, then commits): every ``--batch-max`` messages, or every
``--commit-interval`` seconds (the worker's offset commit interval, 1 s). A new
consumer group starts from the earliest offset. After every write a peer prints
``rows <total rows written> <time.monotonic()>`` on stdout.

Usage (run by bench_pipeline.py): python bench_peers.py ENGINE --bootstrap HOST:PORT
--topic T --group G --data-dir DIR --sensors-file FILE
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from connectors.clickhouse import Store  # noqa: E402
from schemas import serde  # noqa: E402
from schemas.beliefs import BeliefColumns, Sensor, validate  # noqa: E402
from schemas.errors import InputError  # noqa: E402


def load_sensors(path: Path) -> dict[str, Sensor]:
    """The sensors of a sensors file, by name."""
    return {s["name"]: Sensor.model_validate(s) for s in yaml.safe_load(path.read_text())}


def decode_validate(value: bytes | None, sensors: Mapping[str, Sensor]) -> BeliefColumns:
    """The valid beliefs of one message (invalid input is dropped: the benchmark has none)."""
    try:
        if value is None:
            return BeliefColumns()
        kind, record = serde.decode(value)
    except InputError:
        return BeliefColumns()
    cols, _ = validate(kind, record, sensors, datetime.now(UTC))
    return cols


class Progress:
    """Rows written so far, reported on stdout."""

    def __init__(self) -> None:
        self.rows = 0

    def add(self, n: int) -> None:
        """Count ``n`` more rows written and committed."""
        self.rows += n
        print(f"rows {self.rows} {time.monotonic():.6f}", flush=True)


def run_plain(args: argparse.Namespace, store: Store, sensors: Mapping[str, Sensor]) -> None:
    """Consume, decode, validate, insert per batch, commit after the write."""
    from confluent_kafka import Consumer

    progress = Progress()
    consumer = Consumer(
        {
            "bootstrap.servers": args.bootstrap,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([args.topic])
    while True:
        msgs = consumer.consume(args.batch_max, args.batch_within)
        if not msgs:
            continue
        buf = BeliefColumns()
        for m in msgs:
            if m.error():
                continue
            buf.extend(decode_validate(m.value(), sensors))
        n = store.insert_beliefs(buf.to_arrow()) if len(buf) else 0
        consumer.commit(asynchronous=False)
        progress.add(n)


def run_quix(args: argparse.Namespace, store: Store, sensors: Mapping[str, Sensor]) -> None:
    """A Quix Streams application: decode and validate per message, a batching sink."""
    from quixstreams import Application
    from quixstreams.sinks import BaseSink

    progress = Progress()

    class BeliefsSink(BaseSink):
        """Buffers belief columns; a checkpoint's flush inserts them in one write."""

        def __init__(self) -> None:
            super().__init__()
            self.buffer = BeliefColumns()

        def add(self, value: Any, *rest: Any, **kw: Any) -> None:
            self.buffer.extend(value)

        def flush(self) -> None:
            n = store.insert_beliefs(self.buffer.to_arrow()) if len(self.buffer) else 0
            self.buffer = BeliefColumns()
            if n:
                progress.add(n)

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval,
        commit_every=args.batch_max,
        use_changelog_topics=False,
        state_dir=str(Path(args.data_dir) / "quix-state"),
        loglevel="WARNING",
    )
    topic = app.topic(args.topic, value_deserializer="bytes", key_deserializer="bytes")
    sdf = app.dataframe(topic)
    sdf = sdf.apply(lambda value: decode_validate(value, sensors))
    sdf.sink(BeliefsSink())

    app.run()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("engine", choices=["quix", "plain"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--sensors-file", required=True, type=Path)
    ap.add_argument("--batch-max", type=int, default=2000)
    ap.add_argument("--batch-within", type=float, default=0.05)
    ap.add_argument("--commit-interval", type=float, default=1.0)
    args = ap.parse_args()
    sensors = load_sensors(args.sensors_file)
    store = Store.open(None, "flexstream", Path(args.data_dir))
    try:
        (run_quix if args.engine == "quix" else run_plain)(args, store, sensors)
    finally:
        store.close()


if __name__ == "__main__":
    main()
