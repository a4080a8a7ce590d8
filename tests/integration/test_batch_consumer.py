"""The batch consumer on the real broker: batches, commits after handling, carried offsets."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from connectors.batch_consumer import BatchConsumer
from connectors.kafka import ConfirmingProducer

pytestmark = pytest.mark.integration


def _topic(bootstrap: str, partitions: int = 2) -> str:
    name = f"bc-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(timeout=30)
    return name


def _publish(bootstrap: str, topic: str, n: int, first: int = 0) -> None:
    producer = ConfirmingProducer({"bootstrap.servers": bootstrap})
    for i in range(first, first + n):
        producer.send(topic, str(i).encode(), key=f"k{i % 5}")
    producer.flush()


async def _take_all(consumer: BatchConsumer, n: int, commit: bool = True) -> list:
    out: list = []
    for _ in range(200):
        batch = await consumer.take(1000, 0.1)
        out.extend(batch)
        if commit:
            await consumer.commit(batch)
        if len(out) >= n:
            break
    return out


def test_taken_and_committed_messages_are_not_read_again_the_rest_is(broker):
    conf = {"bootstrap.servers": broker.bootstrap}
    topic, group = _topic(broker.bootstrap), f"g-{uuid.uuid4().hex[:6]}"
    _publish(broker.bootstrap, topic, 300)

    async def run() -> tuple[list, list]:
        first = BatchConsumer(conf, group, [topic])
        got = await _take_all(first, 300)
        first.close()
        _publish(broker.bootstrap, topic, 50, first=300)
        second = BatchConsumer(conf, group, [topic])
        # Taken but not committed: the next consumer of the group reads them again.
        again = await _take_all(second, 50, commit=False)
        second.close()
        third = BatchConsumer(conf, group, [topic])
        once_more = await _take_all(third, 50)
        third.close()
        return got, again, once_more

    got, again, once_more = asyncio.run(run())
    assert sorted(int(m.value) for m in got) == list(range(300))
    assert {(m.topic, m.partition) for m in got} == {(topic, 0), (topic, 1)}
    assert sorted(int(m.value) for m in again) == list(range(300, 350))
    assert sorted(int(m.value) for m in once_more) == list(range(300, 350))
    assert all(m.key is not None and m.key.startswith(b"k") for m in got)


def test_a_new_group_continues_where_the_carried_group_committed(broker):
    conf = {"bootstrap.servers": broker.bootstrap}
    topic = _topic(broker.bootstrap)
    old, new = f"old-{uuid.uuid4().hex[:6]}", f"new-{uuid.uuid4().hex[:6]}"
    _publish(broker.bootstrap, topic, 100)
    # The old group committed offset 20 on partition 0 and nothing on partition 1.
    c = Consumer({**conf, "group.id": old, "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition(topic, 0, 20)], asynchronous=False)
    c.close()
    counts = {}
    probe = Consumer({**conf, "group.id": "probe"})
    for p in (0, 1):
        counts[p] = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
    probe.close()

    async def run() -> list:
        consumer = BatchConsumer(conf, new, [topic], carry_offsets_from=old)
        got = await _take_all(consumer, counts[0] - 20 + counts[1])
        consumer.close()
        return got

    got = asyncio.run(run())
    by_partition = {p: sorted(m.offset for m in got if m.partition == p) for p in (0, 1)}
    assert by_partition[0] == list(range(20, counts[0]))
    assert by_partition[1] == list(range(counts[1]))  # uncommitted there: from the earliest
