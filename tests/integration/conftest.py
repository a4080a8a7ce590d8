"""Fixtures that start the real parts: one Kafka broker per test session, a worker per test.

Each test gets its own topic prefix (so its own topics and consumer group), its
own data folder (so its own embedded ClickHouse engine) and its own web port.
Nothing is skipped: what is missing is fetched and started here.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from connectors.kafka import ConfirmingProducer, ensure_topics
from connectors.settings import Settings
from infra import kafka_local
from schemas import serde
from schemas.beliefs import Sensor
from streams import runtime
from streams.sql.access import query_rows

REPO = Path(__file__).resolve().parents[2]
DIST = Path(os.environ.get("FLEXSTREAM_KAFKA_DIST_DIR", REPO / "data" / "kafka-dist"))


def wait_for(pred: Callable[[], object], timeout: float = 60, every: float = 0.2, what: str = ""):
    """Poll ``pred`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(every)  # kept: the pause between polls of the condition, not a wait
    raise AssertionError(f"timed out after {timeout} s waiting for {what or pred} (last: {last!r})")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kafka_local.BrokerInfo]:
    data = tmp_path_factory.mktemp("kafka")
    info = kafka_local.start(
        data, DIST, port=kafka_local.free_port(), controller_port=kafka_local.free_port()
    )
    yield info
    kafka_local.stop(data)


@dataclass
class Env:
    """One test's isolated FlexStream: topics, data folder, worker port, settings."""

    bootstrap: str
    prefix: str
    data_dir: Path
    web_port: int
    sensors_file: Path
    clickhouse_port: int = 0
    workers: list[subprocess.Popen] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "FLEXSTREAM_TOPIC_PREFIX": self.prefix,
            "FLEXSTREAM_DATA_DIR": str(self.data_dir),
            "FLEXSTREAM_WORKER_WEB_PORT": str(self.web_port),
            "FLEXSTREAM_WORKER_CLICKHOUSE_PORT": str(self.clickhouse_port),
            "FLEXSTREAM_WORKER_SENSORS_FILE": str(self.sensors_file),
            "FLEXSTREAM_KAFKA_DIST_DIR": str(DIST),
            **self.extra_env,
        }

    def settings(self) -> Settings:
        saved = dict(os.environ)
        os.environ.update(self.env)
        try:
            return Settings()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def topic(self, name: str) -> str:
        return self.prefix + name

    def start_worker(self) -> subprocess.Popen:
        proc = runtime.spawn_worker(self.env, self.data_dir / f"worker-{len(self.workers)}.log")
        self.workers.append(proc)
        runtime.wait_worker_ready(self.data_dir, proc, timeout=90)
        return proc

    def sql(self, query: str) -> list[list]:
        return query_rows(self.settings(), query)[1]

    def publish(self, topic: str, messages: list[tuple[str, bytes]]) -> int:
        producer = ConfirmingProducer({"bootstrap.servers": self.bootstrap})
        for key, value in messages:
            producer.send(self.topic(topic), value, key=key)
        return producer.flush()

    def consume_all(self, topic: str, expect: int, timeout: float = 30) -> list:
        """Read ``topic`` from the start until ``expect`` messages came (or time out)."""
        c = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"test-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        c.subscribe([self.topic(topic)])
        out: list = []
        deadline = time.monotonic() + timeout
        while len(out) < expect and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is not None and not msg.error():
                out.append(msg)
        c.close()
        return out

    def committed(self, group: str, topic: str) -> int:
        """Offsets the worker's group ``group`` (e.g. ``readings``) committed on ``topic``."""
        name = self.topic(topic)
        c = Consumer(
            {"bootstrap.servers": self.bootstrap, "group.id": self.topic(f"worker.{group}")}
        )
        parts = c.list_topics(name, timeout=10).topics[name].partitions
        got = c.committed([TopicPartition(name, p) for p in parts], timeout=10)
        c.close()
        return sum(max(tp.offset, 0) for tp in got)

    def end_offsets(self, topic: str) -> int:
        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "offsets"})
        md = c.list_topics(self.topic(topic), timeout=10)
        total = 0
        for p in md.topics[self.topic(topic)].partitions:
            _, hi = c.get_watermark_offsets(TopicPartition(self.topic(topic), p), timeout=10)
            total += hi
        c.close()
        return total


SENSORS = [
    Sensor(name="pv", unit="kW", event_resolution="PT15M", timezone="Europe/Amsterdam"),
    Sensor(name="load", unit="kW", event_resolution="PT15M"),
    Sensor(name="soc", unit="kWh", event_resolution="PT0M"),
    Sensor(name="price", unit="EUR/MWh", event_resolution="PT1H", timezone="Europe/Amsterdam"),
    Sensor(
        name="daily",
        unit="kWh",
        event_resolution="P1D",
        timezone="Europe/Amsterdam",
        off_grid="floor",
    ),
]


@pytest.fixture
def fs(broker: kafka_local.BrokerInfo, tmp_path: Path) -> Iterator[Env]:
    sensors_file = tmp_path / "sensors.yaml"
    sensors_file.write_text(
        yaml.safe_dump([s.model_dump(mode="json", by_alias=True) for s in SENSORS])
    )
    env = Env(
        bootstrap=broker.bootstrap,
        prefix=f"t{uuid.uuid4().hex[:10]}.",
        data_dir=tmp_path / "data",
        web_port=kafka_local.free_port(),
        clickhouse_port=kafka_local.free_port(),
        sensors_file=sensors_file,
    )
    ensure_topics({"bootstrap.servers": broker.bootstrap}, env.prefix)
    yield env
    for proc in env.workers:
        runtime.stop_process(proc, timeout=15)


def batch(sensor: str, start, values, res_ms: int = 900_000, **kw) -> bytes:
    """A framed BeliefBatch."""
    rec = {"sensor": sensor, "start": start, "resolution_ms": res_ms, "values": list(values)}
    rec.update(kw)
    return serde.encode("BeliefBatch", rec)
