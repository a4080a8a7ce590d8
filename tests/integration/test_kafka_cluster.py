"""The local three-node KRaft cluster: replicated topics keep serving when a node is lost."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.kafka import ConfirmingProducer
from infra import kafka_local
from tests.integration.conftest import DIST
from tests.integration.test_cli import local_env, run  # noqa: F401 - local_env is a fixture

pytestmark = pytest.mark.integration


def _produce(bootstrap: str, topic: str, values: range) -> int:
    producer = ConfirmingProducer(
        {"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": 60000}
    )
    for v in values:
        producer.send(topic, str(v).encode(), key=str(v % 7))
    return producer.flush(timeout=90)


def _consume(bootstrap: str, topic: str, expect: int) -> set[int]:
    c = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    c.subscribe([topic])
    seen: set[int] = set()
    try:
        for _ in range(600):
            msg = c.poll(0.5)
            if msg is not None and not msg.error():
                seen.add(int(msg.value()))
            if len(seen) >= expect:
                break
    finally:
        c.close()
    return seen


def _free_run(n: int) -> int:
    """A port p such that p .. p + n - 1 are free on 127.0.0.1 now."""
    for _ in range(50):
        base = kafka_local.free_port()
        if base + n < 65000 and all(kafka_local._port_free(base + i) for i in range(n)):
            return base
    raise AssertionError(f"no {n} free ports in a row")


def test_a_three_node_cluster_keeps_every_acknowledged_write_when_a_node_stops(local_env):  # noqa: F811
    base = _free_run(6)
    env = {
        **local_env,
        "FLEXSTREAM_KAFKA_PORT": str(base),
        "FLEXSTREAM_KAFKA_CONTROLLER_PORT": str(base + 1),
        "FLEXSTREAM_KAFKA_HEAP_MB": "256",
    }
    root = Path(env["FLEXSTREAM_DATA_DIR"]) / "kafka-cluster"
    out = run(["up", "--brokers", "3"], env, timeout=300)
    try:
        assert out.returncode == 0, out.stderr
        assert "local cluster of 3 nodes" in out.stdout
        cluster = kafka_local.running_cluster(root)
        assert cluster is not None and len(cluster.brokers) == 3
        assert out.stdout.strip().splitlines()[-1] == cluster.bootstrap
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        topics = admin.list_topics(timeout=10).topics
        # The project's topics are replicated to all three nodes.
        assert all(
            len(p.replicas) == 3
            for name, t in topics.items()
            if name.startswith("flexstream.")
            for p in t.partitions.values()
        )
        assert "flexstream.readings.meter" in topics
        admin.create_topics([NewTopic("replicated", 3)])["replicated"].result(30)
        assert _produce(cluster.bootstrap, "replicated", range(0, 200)) == 200

        # One node goes; with two replicas in sync, writes and reads go on.
        assert kafka_local.stop(cluster.brokers[1].data_dir)
        left = kafka_local.running_cluster(root)
        assert left is not None and len(left.brokers) == 2
        assert _produce(left.bootstrap, "replicated", range(200, 400)) == 200
        assert _consume(left.bootstrap, "replicated", 400) == set(range(400))

        # Starting the cluster again brings the stopped node back with its data.
        again = run(["up", "--brokers", "3"], env, timeout=300)
        assert again.returncode == 0, again.stderr
        assert len(kafka_local.running_cluster(root).brokers) == 3
        with pytest.raises(kafka_local.BrokerError, match="has 3 nodes, not 5"):
            kafka_local.start_cluster(root, DIST, nodes=5)
    finally:
        down = run(["down"], env)
    assert down.returncode == 0 and "broker stopped" in down.stdout
    assert kafka_local.running_cluster(root) is None
