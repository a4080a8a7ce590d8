"""Ingestion step: raw reading messages in, valid belief columns and dead letters out.

Pure (no I/O): the agent hands it a batch of messages with their coordinates and
the current time; it decodes, validates and converts. A message that cannot be
read at all is rejected whole; a batch with some bad values keeps the good ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from schemas import serde
from schemas.beliefs import BeliefColumns, Limits, Rejection, Sensor, validate
from schemas.errors import InputError


@dataclass(frozen=True)
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


@dataclass
class IngestResult:
    """What a batch of messages turned into."""

    beliefs: BeliefColumns
    dead_letters: list[dict]
    sources: set[str]


def dead_letter(msg: RawMessage, rej: Rejection, now: datetime) -> dict:
    """A ``DeadLetter`` record for ``rej`` about ``msg``."""
    return {
        "reason": rej.reason,
        "field": rej.field,
        "error": rej.error,
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "item": rej.item,
        "key": msg.key,
        "value": msg.value,
        "rejected_at": now,
    }


def ingest(
    messages: Iterable[RawMessage],
    sensors: Mapping[str, Sensor],
    now: datetime,
    limits: Limits = Limits(),  # noqa: B008 - frozen dataclass
) -> IngestResult:
    """Decode and validate ``messages``; never raises on bad input."""
    out = BeliefColumns()
    dead: list[dict] = []
    sources: set[str] = set()
    for msg in messages:
        try:
            if msg.value is None:
                raise InputError("the message has no value (a tombstone is not a reading)", "value")
            kind, record = serde.decode(msg.value)
        except InputError as exc:
            dead.append(dead_letter(msg, Rejection("bad-bytes", str(exc), exc.field), now))
            continue
        cols, rejections = validate(kind, record, sensors, now, limits)
        if len(cols):
            out.extend(cols)
            sources.update(cols.source)
        dead.extend(dead_letter(msg, r, now) for r in rejections)
    return IngestResult(out, dead, sources)
