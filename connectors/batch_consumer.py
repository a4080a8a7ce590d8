"""Batches of messages from Kafka for one consuming loop, committed only after they were handled.

A :class:`BatchConsumer` wraps one confluent-kafka consumer in a consumer group.
Its calls run on one thread of their own (librdkafka fetches in the
background; the event loop never blocks on Kafka): :meth:`take` hands over up
to ``n`` messages as :class:`RawMessage` values, :meth:`commit` commits the
offsets after a batch's last messages. Offsets are never committed by
themselves (``enable.auto.commit`` is off): what was taken but not committed is
consumed again after a restart or a rebalance.

A group that has no committed offset for a partition yet starts where another
group (``carry_offsets_from``) got to, else at the earliest offset: a consumer
moved to a new group name continues instead of replaying the topic.

:attr:`BatchConsumer.lag` tells, per assigned partition, how many messages
lie between the consumer's position and the partition's high watermark. It is
noted on the consumer's thread after a take, at most every ``LAG_EVERY``
seconds, from what librdkafka already knows (the high watermark its last
fetch saw, the local position): no request to the broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from schemas.errors import ConnectorError

log = logging.getLogger("flexstream.consumer")

#: Seconds between two log lines about the same consumer error.
ERROR_LOG_EVERY = 30.0
#: Seconds between two notes of the consumer lag.
LAG_EVERY = 1.0


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A consumed message and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def where(self) -> str:
        """``topic[partition]@offset`` for logs."""
        return f"{self.topic}[{self.partition}]@{self.offset}"


def next_offsets(messages: Iterable[RawMessage]) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the offset after the last of ``messages``: what to commit."""
    out: dict[tuple[str, int], int] = {}
    for m in messages:
        tp = (m.topic, m.partition)
        if m.offset >= out.get(tp, -1):
            out[tp] = m.offset + 1
    return out


def committed_offsets(
    admin: Any, group: str, partitions: list[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The offsets ``group`` committed on ``partitions`` (those it never committed are left out).

    ``admin`` is a confluent-kafka ``AdminClient``; blocking (up to 15 s).
    """
    from confluent_kafka import ConsumerGroupTopicPartitions

    tps = [TopicPartition(t, p) for t, p in partitions]
    futs = admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, tps)], request_timeout=10
    )
    found = futs[group].result(timeout=15)
    return {
        (p.topic, p.partition): p.offset
        for p in found.topic_partitions
        if p.offset >= 0 and p.error is None
    }


class BatchConsumer:
    """One consumer of ``topics`` in ``group``; see the module docstring."""

    def __init__(
        self,
        conf: dict[str, Any],
        group: str,
        topics: list[str],
        *,
        carry_offsets_from: str | None = None,
        session_timeout_s: float = 10.0,
        heartbeat_interval_s: float = 2.0,
    ) -> None:
        self.group = group
        self.topics = topics
        self._carry_from = carry_offsets_from
        self._admin_conf = dict(conf)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"consumer-{group}")
        self._consumer = Consumer(
            {
                **conf,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "session.timeout.ms": int(session_timeout_s * 1000),
                "heartbeat.interval.ms": int(heartbeat_interval_s * 1000),
                "fetch.wait.max.ms": 50,
                "log_level": 3,
            }
        )
        self._consumer.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._logged: dict[str, float] = {}
        self.assigned: set[tuple[str, int]] = set()
        #: Per assigned partition, messages behind its high watermark (see the module docstring).
        self.lag: dict[tuple[str, int], int] = {}
        self._lag_noted = -LAG_EVERY
        self.closed = False

    # -- on the consumer's thread -------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned |= {(p.topic, p.partition) for p in partitions}
        log.info("%s: assigned %s", self.group, _names(partitions))
        if not self._carry_from or not partitions:
            return
        try:
            start = self._carried_offsets(consumer, partitions)
        except Exception as exc:  # noqa: BLE001 - fall back to the group's own rules
            log.warning(
                "%s: reading the offsets of %s failed (%s)", self.group, self._carry_from, exc
            )
            return
        if start:
            log.info(
                "%s: continuing from group %s at %s", self.group, self._carry_from, _names(start)
            )
            consumer.assign([start.get((p.topic, p.partition), p) for p in partitions])

    def _carried_offsets(
        self, consumer: Consumer, partitions: list[TopicPartition]
    ) -> dict[tuple[str, int], TopicPartition]:
        """Offsets of ``carry_offsets_from`` for the partitions this group never committed."""
        from confluent_kafka.admin import AdminClient

        own = consumer.committed(partitions, timeout=10)
        missing = [TopicPartition(p.topic, p.partition) for p in own if p.offset < 0]
        if not missing:
            return {}
        found = committed_offsets(
            AdminClient(self._admin_conf),
            self._carry_from,
            [(p.topic, p.partition) for p in missing],
        )
        return {tp: TopicPartition(tp[0], tp[1], o) for tp, o in found.items()}

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned -= {(p.topic, p.partition) for p in partitions}
        self.lag = {tp: n for tp, n in self.lag.items() if tp in self.assigned}
        log.info("%s: revoked %s", self.group, _names(partitions))

    def _note_lag(self) -> None:
        """Note the lag of the assigned partitions, from librdkafka's cached watermarks."""
        now = time.monotonic()
        if now - self._lag_noted < LAG_EVERY:
            return
        self._lag_noted = now
        lag: dict[tuple[str, int], int] = {}
        try:
            assigned = [TopicPartition(t, p) for t, p in self.assigned]
            for tp in self._consumer.position(assigned):
                if tp.offset < 0:
                    continue  # nothing fetched from it yet: no position to measure from
                _, high = self._consumer.get_watermark_offsets(tp, cached=True)
                if high >= 0:
                    lag[(tp.topic, tp.partition)] = max(0, high - tp.offset)
        except KafkaException as exc:
            self._log_error(exc.args[0])
            return
        self.lag = lag

    def _take(self, n: int, within: float) -> list[RawMessage]:
        out = []
        for m in self._consumer.consume(n, within):
            err = m.error()
            if err is None:
                out.append(RawMessage(m.topic(), m.partition(), m.offset(), m.key(), m.value()))
            elif err.fatal():
                raise ConnectorError(f"consuming {', '.join(self.topics)} failed for good: {err}")
            else:
                self._log_error(err)
        self._note_lag()
        return out

    def _log_error(self, err: KafkaError) -> None:
        """Log a passing consumer error, once per kind every ``ERROR_LOG_EVERY`` seconds."""
        now = time.monotonic()
        kind = err.name()
        if now - self._logged.get(kind, -ERROR_LOG_EVERY) >= ERROR_LOG_EVERY:
            self._logged[kind] = now
            log.warning("%s: %s (Kafka retries by itself)", self.group, err.str())

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as exc:
            # The batch is stored: a commit lost to a rebalance only means the new owner
            # of the partition reads it again, which the store's key makes harmless.
            log.warning(
                "%s: committing %s failed (%s); it may be read again", self.group, _names(tps), exc
            )

    def _close(self) -> None:
        self._consumer.close()

    # -- from the event loop --------------------------------------------------------------

    async def take(self, n: int, within: float) -> list[RawMessage]:
        """Up to ``n`` messages, waiting up to ``within`` seconds for the batch to fill."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._take, n, within)

    async def commit(self, messages: Iterable[RawMessage]) -> None:
        """Commit the offsets after ``messages`` (each partition's last one)."""
        offsets = next_offsets(messages)
        if offsets:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._commit, offsets)

    def close(self) -> None:
        """Leave the group (blocking; waits for a ``take`` in progress to return)."""
        if self.closed:
            return
        self.closed = True
        try:
            self._thread.submit(self._close).result(timeout=30)
        finally:
            self._thread.shutdown(wait=False)


def _names(partitions: Iterable[TopicPartition | tuple | Any]) -> str:
    items = partitions.values() if isinstance(partitions, dict) else partitions
    return (
        ", ".join(
            f"{p.topic}[{p.partition}]" + (f"@{p.offset}" if p.offset >= 0 else "") for p in items
        )
        or "nothing"
    )
