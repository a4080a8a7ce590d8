"""Why an input is rejected: the ``RejectionCode`` of every dead letter, and ``Rejection``.

A rejected message or item becomes a ``DeadLetter`` (``dead_letter.avsc``) whose
``error`` field is one of :class:`RejectionCode` and whose ``reason`` says, in
words, what is wrong and what to do.

The code travels as a plain Avro string, not as an Avro enum. An enum would need
a new schema version, which readers of the current ids cannot read at all (they
refuse unknown schema ids), and each code added later would change the schema
again; dead-letter readers (``flexstream show dead-letters``, the ClickHouse
landing) keep the string as read, so codes written by a newer version still show.
Writers, though, only produce members: :class:`Rejection` refuses any other string.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RejectionCode(StrEnum):
    """The ``error`` of a dead letter: which check an input failed."""

    #: The bytes are not a framed Avro message of a known schema (or no value at all).
    BAD_BYTES = "bad-bytes"
    #: A known record that is not a reading (e.g. a dead letter sent to a readings topic).
    BAD_SCHEMA = "bad-schema"
    #: The message key is not the reading's sensor.
    KEY_MISMATCH = "key-mismatch"
    #: The sensor is not registered.
    UNKNOWN_SENSOR = "unknown-sensor"
    #: The resolution is not positive, or the series spans too long.
    BAD_RESOLUTION = "bad-resolution"
    #: A batch without values.
    EMPTY_BATCH = "empty-batch"
    #: A batch with more values than the worker accepts per message.
    OVERSIZED_BATCH = "oversized-batch"
    #: The batch's resolution is not the sensor's event resolution.
    RESOLUTION_MISMATCH = "resolution-mismatch"
    #: No source named.
    BAD_SOURCE = "bad-source"
    #: The cumulative probability lies outside [0, 1].
    BAD_PROBABILITY = "bad-probability"
    #: The unit cannot be converted to the sensor's unit.
    INCOMPATIBLE_UNIT = "incompatible-unit"
    #: An event or belief time outside the range the history keeps.
    OUT_OF_RANGE = "out-of-range"
    #: An event start off the sensor's resolution grid.
    OFF_GRID = "off-grid"
    #: A belief horizon longer than any series may span.
    BAD_HORIZON = "bad-horizon"
    #: A NaN or infinite value.
    NOT_FINITE = "not-finite"
    #: A belief time too far after the receiver's clock.
    BELIEF_IN_FUTURE = "belief-in-future"
    #: The history store refused the message's beliefs.
    STORE_REJECTED = "store-rejected"
    #: The receiver failed on the message (a defect, kept so nothing is lost).
    INTERNAL_ERROR = "internal-error"
    #: A message on the schedule-requests topic that is not a schedule request.
    BAD_REQUEST = "bad-request"


@dataclass
class Rejection:
    """One rejected message or item, with the reason and the field as the producer wrote it.

    ``error`` given as a string must be a :class:`RejectionCode` value (else
    ValueError), so no code reaches a dead letter that readers do not know.
    """

    error: RejectionCode
    reason: str
    field: str | None = None
    item: int | None = None

    def __post_init__(self) -> None:
        """Turn a code string into a ``RejectionCode``."""
        if type(self.error) is not RejectionCode:
            self.error = RejectionCode(self.error)
