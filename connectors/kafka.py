"""A thin layer over confluent-kafka: topic definitions, admin helpers, a confirming producer."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

from schemas.errors import ConnectorError


@dataclass(frozen=True)
class TopicSpec:
    """One topic of ``infra/topics.yaml``."""

    name: str
    partitions: int
    config: dict[str, str]
    doc: str


def topic_specs(partitions: Mapping[str, int] | None = None) -> list[TopicSpec]:
    """Read the topic definitions shipped in ``infra/topics.yaml`` (names without prefix).

    ``partitions`` overrides the partitions of the topics it names (those sized
    by a setting, e.g. :func:`site_topic_partitions`).
    """
    raw = yaml.safe_load(resources.files("infra").joinpath("topics.yaml").read_text())
    sized = partitions or {}
    return [
        TopicSpec(
            name=name,
            partitions=int(sized.get(name) or spec.get("partitions", 1)),
            config={k: str(v) for k, v in (spec.get("config") or {}).items()},
            doc=str(spec.get("doc", "")),
        )
        for name, spec in raw.items()
    ]


def site_topic_partitions(site_partitions: int) -> dict[str, int]:
    """The partitions of the topics keyed by site (``FLEXSTREAM_WORKER_SITE_PARTITIONS``).

    0 (scale-out off): none overridden, ``schedule-requests`` keeps its one partition.
    """
    if site_partitions <= 0:
        return {}
    return {name: site_partitions for name in SITE_TOPICS}


def site_partition(site: str, partitions: int) -> int:
    """The partition of the site-keyed topics that holds ``site`` (CRC-32 of its name)."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return zlib.crc32(site.encode()) % partitions


#: The topics keyed by site, co-partitioned: a site's requests and its beliefs.
SITE_TOPICS = ("schedule-requests", "beliefs-by-site")


def ensure_topics(
    conf: dict[str, Any],
    prefix: str,
    replication_factor: int = 1,
    timeout: float = 30.0,
    partitions: Mapping[str, int] | None = None,
) -> list[str]:
    """Create the project's topics that do not exist yet; return the names created.

    ``partitions``: see :func:`topic_specs`. An existing topic with fewer
    partitions than its definition gets the missing ones (never fewer).
    """
    admin = AdminClient(conf)
    md = admin.list_topics(timeout=timeout)
    existing = set(md.topics)
    specs = topic_specs(partitions)
    _grow_partitions(admin, md, prefix, specs, timeout)
    wanted = [
        NewTopic(
            prefix + s.name,
            num_partitions=s.partitions,
            replication_factor=replication_factor,
            config=s.config,
        )
        for s in specs
        if prefix + s.name not in existing
    ]
    if not wanted:
        return []
    created = []
    for name, fut in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            fut.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise ConnectorError(f"creating topic {name} failed: {exc}") from None
    _wait_for_topics(admin, created, timeout)
    return created


def _grow_partitions(
    admin: AdminClient, md: Any, prefix: str, specs: list[TopicSpec], timeout: float
) -> None:
    """Give existing topics the partitions their definition asks for (never fewer)."""
    grow = [
        NewPartitions(prefix + s.name, s.partitions)
        for s in specs
        if prefix + s.name in md.topics
        and len(md.topics[prefix + s.name].partitions) < s.partitions
    ]
    for name, fut in (
        admin.create_partitions(grow, operation_timeout=timeout) if grow else {}
    ).items():
        try:
            fut.result(timeout=timeout)
        except KafkaException as exc:
            raise ConnectorError(f"adding partitions to topic {name} failed: {exc}") from None


def _wait_for_topics(admin: AdminClient, names: Iterable[str], timeout: float) -> None:
    names = set(names)
    deadline = time.monotonic() + timeout
    while names and time.monotonic() < deadline:
        md = admin.list_topics(timeout=timeout)
        ready = {n for n in names if n in md.topics and not md.topics[n].error}
        names -= ready
        if names:
            time.sleep(0.1)


def watermark_offsets(consumer: Any, tp: Any, timeout: float = 15.0) -> tuple[int, int]:
    """(low, high) offsets of a partition, retrying while its leader is not known yet.

    A topic created a moment ago answers ``NOT_LEADER_FOR_PARTITION`` at first.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            lo, hi = consumer.get_watermark_offsets(tp, timeout=timeout)
            return int(lo), int(hi)
        except KafkaException as exc:
            if time.monotonic() >= deadline:
                raise ConnectorError(
                    f"offsets of {tp.topic}[{tp.partition}] unavailable: {exc}"
                ) from None
            time.sleep(0.2)


class ConfirmingProducer:
    """A producer whose ``flush`` returns only when every message is confirmed by the broker.

    Idempotent (no duplicates on retries), acks from all in-sync replicas, lz4
    compression; a failed delivery raises :class:`ConnectorError` with the reason.
    With ``keep_positions``, :attr:`positions` lists the (topic, partition, offset)
    of every confirmed message, to follow what becomes of them.
    """

    def __init__(
        self, conf: dict[str, Any], *, keep_positions: bool = False, **overrides: Any
    ) -> None:
        base = {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.max.bytes": 8_000_000,
            "queue.buffering.max.messages": 500_000,
            "log_level": 3,
        }
        base.update(conf)
        base.update(overrides)
        self._producer = Producer(base)
        self.delivered = 0
        self.positions: list[tuple[str, int, int]] = []
        self._keep_positions = keep_positions
        self._errors: list[str] = []

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self.delivered += 1
            if self._keep_positions:
                self.positions.append((msg.topic(), msg.partition(), msg.offset()))
        else:
            self._errors.append(f"{msg.topic()}: {err.str()}")

    def partitions(self, topic: str, timeout: float = 15.0) -> int:
        """How many partitions ``topic`` has (0 if it does not exist)."""
        md = self._producer.list_topics(topic, timeout=timeout)
        t = md.topics.get(topic)
        return len(t.partitions) if t is not None and not t.error else 0

    def send(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | str | None = None,
        on_position: Callable[[tuple[str, int, int]], None] | None = None,
        partition: int | None = None,
    ) -> None:
        """Queue one message (``value`` None: a tombstone); waits for queue space, never fails.

        ``partition``: where the message goes (default: the producer's partitioner by key).

        ``on_position`` is called with the message's (topic, partition, offset)
        once the broker confirmed it (during :meth:`flush`).
        """
        report = self._on_delivery
        if on_position is not None:

            def report(err: KafkaError | None, msg: Any) -> None:
                self._on_delivery(err, msg)
                if err is None:
                    on_position((msg.topic(), msg.partition(), msg.offset()))

        while True:
            try:
                if partition is None:
                    self._producer.produce(topic, value=value, key=key, on_delivery=report)
                else:
                    self._producer.produce(
                        topic, value=value, key=key, partition=partition, on_delivery=report
                    )
                return
            except BufferError:
                self._producer.poll(0.05)

    def flush(self, timeout: float = 60.0, progress: Callable[[int], None] | None = None) -> int:
        """Wait until every queued message is confirmed; return how many were delivered.

        ``progress`` is told the number delivered so far, a few times a second.
        """
        if progress is None:
            left = self._producer.flush(timeout)
        else:
            deadline = time.monotonic() + timeout
            while True:
                left = self._producer.flush(min(0.2, max(deadline - time.monotonic(), 0)))
                progress(self.delivered)
                if not left or time.monotonic() >= deadline:
                    break
        if left:
            raise ConnectorError(
                f"{left} messages were not confirmed within {timeout:.0f} s; is Kafka reachable?"
            )
        if self._errors:
            errors, self._errors = self._errors, []
            raise ConnectorError(f"{len(errors)} messages were not delivered, first: {errors[0]}")
        return self.delivered
