"""Ingestion step: raw reading messages in, valid belief columns and dead letters out.

Pure (no I/O): the agent hands it a batch of messages with their coordinates and
the current time; it decodes, validates and converts. A message that cannot be
read at all is rejected whole; a batch with some bad values keeps the good ones.

It cannot raise: whatever goes wrong with one message (a bug included) turns
that message into a dead letter with reason ``internal-error`` and the
exception's text, and the rest of the batch lands. Every message is accounted
for in :attr:`IngestResult.outcomes`: so many beliefs stored, so many dead letters.

Dead letters always fit in a Kafka message: the original key and value are
kept up to a bound (:attr:`schemas.beliefs.Limits.max_dead_letter_bytes`);
beyond it they carry the first bytes, the size and the SHA-256 of the original,
with ``value_truncated`` set. When one message yields several dead letters
(bad items of a batch), only the first carries the original bytes; the others
carry the size and digest that match them to it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from connectors.batch_consumer import RawMessage
from schemas import serde
from schemas.beliefs import BeliefColumns, Limits, Sensor, validate
from schemas.errors import InputError
from schemas.rejections import Rejection, RejectionCode

log = logging.getLogger("flexstream.ingest")

#: Longest reason text kept in a dead letter (an exception's text can be long).
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class Outcome:
    """What became of one message: beliefs stored and dead letters written."""

    stored: int
    rejected: int


@dataclass
class IngestResult:
    """What a batch of messages turned into."""

    beliefs: BeliefColumns
    dead_letters: list[dict]
    sources: set[str]
    #: One per message, in order.
    outcomes: list[Outcome] = field(default_factory=list)
    #: The beliefs again, per message: (index of the message, its beliefs).
    parts: list[tuple[int, BeliefColumns]] = field(default_factory=list)


def _bounded(data: bytes | None, limit: int) -> tuple[bytes | None, bool]:
    if data is None or len(data) <= limit:
        return data, False
    return bytes(data[:limit]), True


def dead_letter(
    msg: RawMessage,
    rej: Rejection,
    now: datetime,
    max_bytes: int = Limits.max_dead_letter_bytes,
    carry_value: bool = True,
    digest: str | None = None,
) -> dict:
    """A ``DeadLetter`` record for ``rej`` about ``msg``, bounded in size.

    ``carry_value=False`` leaves the original bytes out (an earlier dead letter
    of the same message carries them); size and digest are always given
    (``digest``: the value's SHA-256 when the caller computed it already).
    """
    key, _ = _bounded(msg.key, max_bytes)
    value, truncated = _bounded(msg.value, max_bytes) if carry_value else (None, True)
    reason = rej.reason
    if len(reason) > MAX_REASON_CHARS:
        reason = reason[:MAX_REASON_CHARS] + f"... ({len(rej.reason)} characters)"
    return {
        "reason": reason,
        "field": rej.field,
        "error": rej.error,
        "topic": msg.topic,
        "partition": msg.partition,
        "offset": msg.offset,
        "item": rej.item,
        "key": key,
        "value": value,
        "rejected_at": now,
        "key_size": None if msg.key is None else len(msg.key),
        "value_size": None if msg.value is None else len(msg.value),
        "value_sha256": digest or _digest(msg.value),
        "value_truncated": truncated and msg.value is not None,
    }


def _digest(value: bytes | None) -> str | None:
    return None if value is None else hashlib.sha256(value).hexdigest()


def _read_one(
    msg: RawMessage, sensors: Mapping[str, Sensor], now: datetime, limits: Limits
) -> tuple[BeliefColumns, list[Rejection]]:
    """Decode and validate one message (may raise on a defect; the caller contains it)."""
    try:
        if msg.value is None:
            raise InputError("the message has no value (a tombstone is not a reading)", "value")
        kind, record = serde.decode(msg.value)
    except InputError as exc:
        return BeliefColumns(), [Rejection(RejectionCode.BAD_BYTES, str(exc), exc.field)]
    if msg.key is not None and kind in ("Belief", "BeliefBatch"):
        key = msg.key.decode("utf-8", errors="replace")
        if key != record.get("sensor"):
            return BeliefColumns(), [
                Rejection(
                    RejectionCode.KEY_MISMATCH,
                    f"the message key {key[:200]!r} is not its sensor {record.get('sensor')!r}; "
                    "key each reading message by its sensor name (or send it without a key), "
                    "so one sensor's readings stay in order on one partition",
                    "key",
                )
            ]
    return validate(kind, record, sensors, now, limits)


def ingest(
    messages: Iterable[RawMessage],
    sensors: Mapping[str, Sensor],
    now: datetime,
    limits: Limits = Limits(),  # noqa: B008 - frozen dataclass
) -> IngestResult:
    """Decode and validate ``messages``; never raises."""
    dead: list[dict] = []
    outcomes: list[Outcome] = []
    parts: list[tuple[int, BeliefColumns]] = []
    for i, msg in enumerate(messages):
        try:
            cols, rejections = _read_one(msg, sensors, now, limits)
        except Exception as exc:  # noqa: BLE001 - one message must not take the batch down
            log.exception("reading %s failed", msg.where)
            cols, rejections = (
                BeliefColumns(),
                [
                    Rejection(
                        RejectionCode.INTERNAL_ERROR,
                        f"{type(exc).__name__}: {exc}; the message could not be read (a defect "
                        "in the receiver, kept here so nothing is lost): report it with this "
                        "dead letter",
                        None,
                    )
                ],
            )
        stored = len(cols)
        if stored:
            parts.append((i, cols))
        if rejections:
            # One digest per message, however many of its items are rejected.
            digest = _digest(msg.value)
            dead.extend(
                dead_letter(msg, r, now, limits.max_dead_letter_bytes, j == 0, digest)
                for j, r in enumerate(rejections)
            )
        outcomes.append(Outcome(stored, len(rejections)))
    # Joined once at the end: one pass per column instead of one extend per message.
    out = BeliefColumns.concat([cols for _, cols in parts])
    return IngestResult(out, dead, set(out.source), outcomes, parts)
