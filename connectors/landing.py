"""What became of published readings: stored by the worker, or dead-lettered.

The worker commits the offset of a readings message (consumer group
``<prefix>worker.readings``) only after the message's beliefs are in ClickHouse and its
dead letters are confirmed by Kafka. So a published message below its
partition's committed offset has been handled, and the dead letters naming its
topic, partition and offset tell whether (some of) it was rejected. Dead letters
are read from the end offsets recorded before publishing, so older ones never
count.

:func:`tally` is pure; the functions around it read offsets and dead letters.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from connectors.kafka import watermark_offsets
from schemas import serde
from schemas.errors import ConnectorError, InputError

Position = tuple[str, int, int]


@dataclass(frozen=True)
class DeadLetterInfo:
    """The readable part of one dead letter."""

    rejected_at: datetime
    #: The code (a ``schemas.rejections.RejectionCode`` value), kept as the string read,
    #: so a code written by a newer version still shows.
    error: str
    field: str | None
    topic: str
    partition: int
    offset: int
    item: int | None
    reason: str
    sensor: str | None

    @property
    def where(self) -> str:
        """The origin as ``topic[partition]@offset``."""
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @property
    def origin(self) -> Position:
        """The origin as (topic, partition, offset)."""
        return (self.topic, self.partition, self.offset)


def dead_letter_info(value: bytes, key: bytes | None = None) -> DeadLetterInfo:
    """Decode a ``DeadLetter`` message; the sensor comes from the original key or value."""
    name, rec = serde.decode(value)
    if name != "DeadLetter":
        raise InputError(f"a {name} is not a dead letter", "value")
    sensor = None
    original_key = rec.get("key") or key
    if original_key:
        sensor = bytes(original_key).decode("utf-8", errors="replace")
    elif rec.get("value") and not rec.get("value_truncated"):
        try:
            sensor = serde.decode(rec["value"])[1].get("sensor")
        except (InputError, ValueError, KeyError, AttributeError):
            sensor = None
    at = rec["rejected_at"]
    return DeadLetterInfo(
        rejected_at=at if at.tzinfo else at.replace(tzinfo=UTC),
        error=rec["error"],
        field=rec.get("field"),
        topic=rec["topic"],
        partition=int(rec["partition"]),
        offset=int(rec["offset"]),
        item=rec.get("item"),
        reason=rec["reason"],
        sensor=sensor,
    )


@dataclass
class Landing:
    """Published messages by what became of them."""

    published: int
    #: Handled, with no dead letter.
    stored: int = 0
    #: Handled, with at least one dead letter (the rest of a batch may have landed).
    dead_lettered: int = 0
    #: Not handled yet.
    pending: int = 0
    dead_letters: list[DeadLetterInfo] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Every published message was handled (stored or dead-lettered)."""
        return self.pending == 0

    @property
    def all_stored(self) -> bool:
        """Every published message was stored, none dead-lettered."""
        return self.stored == self.published


def tally(
    published: Iterable[Position],
    committed: Mapping[tuple[str, int], int],
    dead_letters: Iterable[DeadLetterInfo],
) -> Landing:
    """Sort ``published`` messages into stored, dead-lettered and pending.

    ``committed`` maps (topic, partition) to the consumer group's committed
    offset (the next one to read); ``dead_letters`` may include unrelated ones.
    """
    positions = list(published)
    mine = set(positions)
    letters = [d for d in dead_letters if d.origin in mine]
    rejected = {d.origin for d in letters}
    out = Landing(published=len(positions), dead_letters=letters)
    for topic, partition, offset in positions:
        if offset >= committed.get((topic, partition), -1):
            out.pending += 1
        elif (topic, partition, offset) in rejected:
            out.dead_lettered += 1
        else:
            out.stored += 1
    return out


def _consumer(conf: Mapping[str, Any]) -> Consumer:
    return Consumer(
        {
            **conf,
            "group.id": "flexstream-landing-view",  # never used to commit
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "log_level": 3,
        }
    )


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    md = consumer.list_topics(topic, timeout=15)
    tmeta = md.topics.get(topic)
    if tmeta is None or tmeta.error is not None:
        raise ConnectorError(f"topic {topic} does not exist; run flexstream up")
    return sorted(tmeta.partitions)


def end_offsets(conf: Mapping[str, Any], topic: str) -> dict[int, int]:
    """The end offset (next offset to be written) of every partition of ``topic``."""
    consumer = _consumer(conf)
    try:
        return {
            p: watermark_offsets(consumer, TopicPartition(topic, p))[1]
            for p in _partitions(consumer, topic)
        }
    finally:
        consumer.close()


def committed_offsets(
    conf: Mapping[str, Any], group: str, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    """The committed offsets of consumer ``group`` (-1 where it committed none)."""
    consumer = Consumer({**conf, "group.id": group, "enable.auto.commit": False, "log_level": 3})
    try:
        tps = [TopicPartition(t, p) for t, p in partitions]
        got = consumer.committed(tps, timeout=10) if tps else []
        return {(tp.topic, tp.partition): tp.offset for tp in got}
    finally:
        consumer.close()


def read_dead_letters(
    conf: Mapping[str, Any],
    topic: str,
    start: Mapping[int, int] | None = None,
    since: datetime | None = None,
    timeout: float = 30.0,
) -> list[DeadLetterInfo]:
    """Dead letters of ``topic`` up to its current end, in offset order per partition.

    From the ``start`` offsets per partition, else from the first written at or
    after ``since``, else from the beginning. Unreadable messages are skipped.
    """
    consumer = _consumer(conf)
    try:
        parts = _partitions(consumer, topic)
        ends = {p: watermark_offsets(consumer, TopicPartition(topic, p)) for p in parts}
        if start is not None:
            begin = {p: max(start.get(p, 0), ends[p][0]) for p in parts}
        elif since is not None:
            ms = int(since.timestamp() * 1000)
            found = consumer.offsets_for_times(
                [TopicPartition(topic, p, ms) for p in parts], timeout=10
            )
            # No message at or after ``since``: nothing to read in that partition.
            begin = {
                tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition][1] for tp in found
            }
        else:
            begin = {p: ends[p][0] for p in parts}
        left = {p for p in parts if begin[p] < ends[p][1]}
        if not left:
            return []
        consumer.assign([TopicPartition(topic, p, max(begin[p], 0)) for p in left])
        out: list[DeadLetterInfo] = []
        deadline = time.monotonic() + timeout
        while left:
            if time.monotonic() > deadline:
                raise ConnectorError(f"the topic {topic} could not be read within {timeout:.0f} s")
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            if msg.value() is not None:
                try:
                    out.append(dead_letter_info(msg.value(), msg.key()))
                except (InputError, ValueError, KeyError):
                    pass
            if msg.offset() + 1 >= ends[msg.partition()][1]:
                left.discard(msg.partition())
        return out
    finally:
        consumer.close()


def wait_landed(
    conf: Mapping[str, Any],
    group: str,
    dead_letters_topic: str,
    dead_letters_start: Mapping[int, int] | None,
    published: list[Position],
    timeout: float,
    every: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    progress: Callable[[int, int], None] | None = None,
) -> Landing:
    """Wait until consumer ``group`` handled every ``published`` message, or ``timeout`` s.

    Returns the tally; when time ran out, :attr:`Landing.pending` counts the rest.
    Dead letters are read from ``dead_letters_start`` (None: the topic's start).
    ``progress`` is told ``(handled, published)`` after every look.
    """
    partitions = {(t, p) for t, p, _ in published}
    deadline = clock() + timeout
    while True:
        committed = committed_offsets(conf, group, partitions)
        landing = tally(published, committed, [])
        if progress is not None:
            progress(landing.published - landing.pending, landing.published)
        if landing.done or clock() >= deadline:
            break
        sleep(every)
    letters = read_dead_letters(conf, dead_letters_topic, start=dead_letters_start)
    return tally(published, committed, letters)
