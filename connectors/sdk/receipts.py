"""Receipts of published readings, and the sensors they are checked against.

A publish call returns a :class:`Receipt`: where the broker put its messages
(topic, partition, offset), filled in as the broker confirms them, and the end
offsets of the dead-letters topic taken before sending, from which the dead
letters of these messages are read. :meth:`FlexStreamClient.wait_landed
<connectors.sdk.client.FlexStreamClient.wait_landed>` follows receipts to
where they land (``connectors.landing``) and raises :class:`NotLanded` when the
worker did not handle them all in time: a receipt is never reported done while
some of it is pending.

:class:`KnownSensors` holds the sensors a client checks readings against,
read on first use and read again when a check fails, so a sensor registered a
moment ago is found.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from connectors.landing import Landing, Position
from connectors.reading_check import SDK, Outgoing, check_messages
from schemas.beliefs import Sensor
from schemas.errors import ConnectorError, InputError


@dataclass
class Receipt:
    """What one publish call sent, to await where it lands.

    ``positions`` fills in as the broker confirms the messages (at once for
    ``wait=True``; at :meth:`flush <connectors.sdk.client.FlexStreamClient.flush>`
    otherwise).
    """

    topic: str
    sensor: str
    #: Beliefs sent (values of all messages).
    beliefs: int
    #: Messages sent (a long series is split).
    messages: int
    #: The time of publishing (the client's clock).
    sent_at: datetime
    #: End offsets per partition of the dead-letters topic before sending; None: unknown
    #: (its dead letters are then read from the topic's start).
    dead_letters_from: Mapping[int, int] | None = None
    #: (topic, partition, offset) of every confirmed message.
    positions: list[Position] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        """The broker confirmed every message."""
        return len(self.positions) == self.messages


class NotLanded(ConnectorError):
    """The worker did not handle every published message in time.

    ``landing`` counts what was stored and dead-lettered so far and what is pending.
    """

    def __init__(self, message: str, landing: Landing) -> None:
        self.landing = landing
        super().__init__(message)


def dead_letters_start(receipts: Iterable[Receipt]) -> dict[int, int] | None:
    """Where to read the receipts' dead letters from: the lowest start per partition.

    None (read from the start of the topic) when a receipt has no start.
    """
    out: dict[int, int] = {}
    for r in receipts:
        if r.dead_letters_from is None:
            return None
        for p, offset in r.dead_letters_from.items():
            out[p] = min(offset, out.get(p, offset))
    return out


def landed_or_raise(landing: Landing, timeout: float, group: str) -> Landing:
    """``landing`` when nothing is pending; else :class:`NotLanded` saying what is."""
    if landing.pending:
        raise NotLanded(
            f"{landing.pending} of {landing.published} messages were not handled within "
            f"{timeout:g} s ({landing.stored} stored, {landing.dead_lettered} dead-lettered "
            f"so far); is a worker running (consumer group {group})? Wait again with the "
            "same receipts",
            landing,
        )
    return landing


def value_ranges(records: list[Mapping], key: str = "values") -> list[str]:
    """``values[i:j]`` of each record of a split series, as the caller counts its values."""
    out, i = [], 0
    for rec in records:
        j = i + len(rec[key])
        out.append(f"{key}[{i}:{j}]")
        i = j
    return out


class KnownSensors:
    """The sensors readings are checked against, read by ``read`` once and again on a miss."""

    def __init__(self, read: Callable[[], Mapping[str, Sensor]]) -> None:
        self._read = read
        self._sensors: Mapping[str, Sensor] | None = None
        self._lock = threading.Lock()
        #: How often the sensors were read.
        self.reads = 0

    def _fresh(self) -> Mapping[str, Sensor]:
        self._sensors = self._read()
        self.reads += 1
        return self._sensors

    def check(self, messages: list[Outgoing]) -> None:
        """Raise :class:`InputError` if the worker would reject a message for its sensor.

        A failed check against sensors read earlier is repeated against sensors
        read now: the sensor may have been registered or changed since.
        """
        with self._lock:
            known, fresh = (self._sensors, False) if self._sensors is not None else (None, True)
            if known is None:
                known = self._fresh()
            try:
                check_messages(messages, known, SDK)
            except InputError:
                if fresh:
                    raise
                check_messages(messages, self._fresh(), SDK)
