"""The FlexStream client SDK: publish readings, request schedules, follow schedules.

Two flavours over the same Kafka topics: :class:`FlexStreamClient` (blocking)
and :class:`AsyncFlexStreamClient` (asyncio; it runs the blocking calls in
threads and bridges a consumer thread to an ``asyncio.Queue``)::

    with FlexStreamClient("127.0.0.1:9092") as fs:
        receipt = fs.publish_readings("site-pv", start, timedelta(minutes=15), values,
                                      source="meter", belief_horizon=timedelta(0))
        landing = fs.wait_landed(receipt, timeout=60)   # stored / dead-lettered, with reasons
        schedules = fs.trigger_and_get_schedule("site", start, timedelta(days=1))

Readings are checked against the sensors the worker knows before anything is
sent (``check=False`` skips it), are believed at the time of publishing unless
given a belief time or horizon, and each publish returns a :class:`Receipt`
(where its messages went) that :meth:`FlexStreamClient.wait_landed` follows
until the worker stored or dead-lettered them (:class:`NotLanded` when it did
not in time).

The bootstrap address is given explicitly or taken from ``KAFKA_BOOTSTRAP_SERVERS``
(:meth:`FlexStreamClient.from_settings`); for the local broker, ``flexstream up``
prints it on its last line.

Which answers belong to a request: the scheduling agent answers every device
of a request with one ``Schedule`` carrying the request id (the devices named
in the request, or all devices of the asset). :meth:`FlexStreamClient.get_schedule`
therefore waits until every expected device has answered: ``expect_devices``
when given, otherwise the devices the request named when this client sent it.
When neither is known (a request for the whole asset), each answer names every
device answered for its request (``answered_devices``), and the wait ends when
all of them came. Only for answers without that list (written with schedule
schema version 1) does it return once a first answer arrived and no further
one came for ``settle`` seconds. Answers
given twice (same request id and sensor, e.g. after a worker restart) are
collapsed to the last one received.

The pure parts (:class:`Schedule`, :func:`batch_records`, :func:`build_request`,
:class:`AnswerBook`) are usable and tested without Kafka.
"""

from connectors.landing import DeadLetterInfo, Landing
from connectors.sdk.aio import AsyncFlexStreamClient, ScheduleStream
from connectors.sdk.client import FlexStreamClient, ScheduleSubscription, ScheduleTimeout
from connectors.sdk.client import Topic as Topic
from connectors.sdk.receipts import NotLanded, Receipt
from connectors.sdk.records import MAX_VALUES as MAX_VALUES
from connectors.sdk.records import OK_STATUSES as OK_STATUSES
from connectors.sdk.records import (
    AnswerBook,
    Schedule,
    batch_records,
    belief_record,
    build_request,
    collapse,
    decode_schedule,
)

__all__ = [
    "AnswerBook",
    "AsyncFlexStreamClient",
    "DeadLetterInfo",
    "FlexStreamClient",
    "Landing",
    "NotLanded",
    "Receipt",
    "Schedule",
    "ScheduleStream",
    "ScheduleSubscription",
    "ScheduleTimeout",
    "batch_records",
    "belief_record",
    "build_request",
    "collapse",
    "decode_schedule",
]
