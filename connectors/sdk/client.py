"""The blocking client: publish readings, request schedules, follow schedules."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from connectors import landing
from connectors.kafka import ConfirmingProducer, site_partition, watermark_offsets
from connectors.landing import Landing
from connectors.reading_check import Outgoing
from connectors.registry import known_sensors, read_registry
from connectors.sdk.receipts import (
    KnownSensors,
    Receipt,
    dead_letters_start,
    landed_or_raise,
    value_ranges,
)
from connectors.sdk.records import (
    MAX_VALUES,
    AnswerBook,
    Schedule,
    batch_records,
    belief_record,
    build_request,
    decode_schedule,
)
from connectors.settings import KafkaSettings, Settings
from schemas import serde
from schemas.assets import Asset, site_of
from schemas.beliefs import publishing_belief_time
from schemas.errors import ConnectorError, InputError

Topic = Literal["meter", "price"]
#: How long the dead-letters topic's end offsets serve as where to read a receipt's
#: dead letters from (older offsets stay correct, but more dead letters are read).
_DEAD_LETTERS_FLOOR_AGE = 30.0


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ScheduleTimeout(ConnectorError):
    """No (complete) answer to a schedule request came in time; ``partial`` holds what did."""

    def __init__(self, message: str, request_id: str, partial: list[Schedule]) -> None:
        self.request_id = request_id
        self.partial = partial
        super().__init__(message)


class ScheduleSubscription:
    """A blocking iterator of schedules over its own consumer (see ``subscribe_schedules``)."""

    def __init__(
        self,
        consumer: Consumer,
        sensors: Iterable[str] | None,
        timeout: float | None,
        until_end: bool = False,
        close: bool = True,
    ) -> None:
        self._c: Consumer | None = consumer
        self._close = close
        self._wanted = None if sensors is None else set(sensors)
        self._timeout = timeout
        self._left: dict[int, int] | None = None
        if until_end:  # stop at the end offsets of the partitions that hold messages
            self._left = {}
            for tp in consumer.assignment():
                lo, hi = watermark_offsets(consumer, tp)
                if hi > lo:
                    self._left[tp.partition] = hi
        self.stop = threading.Event()

    def __iter__(self) -> ScheduleSubscription:
        return self

    def __next__(self) -> Schedule:
        idle_since = time.monotonic()
        while self._c is not None and not self.stop.is_set():
            if self._left is not None and not self._left:
                break
            msg = self._c.poll(0.2)
            now = time.monotonic()
            if msg is None or msg.error():
                if self._timeout is not None and now - idle_since >= self._timeout:
                    break
                continue
            if self._left is not None:
                idle_since = now
                if msg.offset() + 1 >= self._left.get(msg.partition(), 0):
                    self._left.pop(msg.partition(), None)
            key = msg.key().decode(errors="replace") if msg.key() else None
            s = decode_schedule(msg.value())
            if s is not None and (self._wanted is None or (key or s.sensor) in self._wanted):
                return s
        if self._close:
            self.close()
        raise StopIteration

    def close(self) -> None:
        """Close the consumer (idempotent)."""
        if self._c is not None:
            self._c.close()
            self._c = None

    def __enter__(self) -> ScheduleSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FlexStreamClient:
    """Blocking client: producers publish readings, controllers request and follow schedules.

    ``librdkafka_overrides`` go to every producer and consumer (underscores in a
    key become dots: ``linger_ms=10``; dotted keys work as ``**{"linger.ms": 10}``).
    With ``settings``, its security options, topic prefix and the worker's sensors
    file (``FLEXSTREAM_WORKER_SENSORS_FILE``) are used. Not meant to be shared by
    threads except through :class:`AsyncFlexStreamClient`.

    Readings are checked before sending (``check=False`` here or per call sends
    without checking): the sensor must be known to the worker (registered, or in
    ``sensors_file``), the unit convertible to the sensor's and the resolution the
    sensor's. The registry is read on the first check and again when a check
    fails. ``clock`` gives the time of publishing, the belief time of readings
    published without ``belief_time`` or ``belief_horizon``.
    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        topic_prefix: str = "flexstream.",
        settings: Settings | None = None,
        max_values: int = MAX_VALUES,
        settle: float = 0.5,
        check: bool = True,
        sensors_file: Path | None = None,
        clock: Callable[[], datetime] = _utc_now,
        **librdkafka_overrides: Any,
    ) -> None:
        bootstrap = bootstrap_servers or (settings.kafka.bootstrap_servers if settings else None)
        if not bootstrap:
            raise ConnectorError(
                "no Kafka bootstrap servers: pass bootstrap_servers or set "
                "KAFKA_BOOTSTRAP_SERVERS (for the local broker, 'flexstream up' prints it)"
            )
        self.bootstrap = bootstrap
        self.topic_prefix = settings.kafka.topic_prefix if settings else topic_prefix
        conf: dict[str, Any] = (
            settings.kafka.client_config(bootstrap)
            if settings
            else {"bootstrap.servers": bootstrap}
        )
        conf.update({k.replace("_", "."): v for k, v in librdkafka_overrides.items()})
        self._conf = conf
        self.max_values = max_values
        self.settle = settle
        self.check = check
        self.clock = clock
        if sensors_file is None and settings is not None:
            sensors_file = settings.worker.sensors_file
        self.sensors_file = sensors_file
        self.known_sensors = KnownSensors(
            lambda: known_sensors(self._conf, self.topic("registry"), self.sensors_file)
        )
        kafka = (
            settings.kafka if settings else KafkaSettings.model_construct(topic_prefix=topic_prefix)
        )
        #: The worker's consumer group of the readings topics.
        self.readings_group = kafka.consumer_group("readings")
        self._dead_letters_floor: tuple[float, dict[int, int] | None] | None = None
        self._producer: ConfirmingProducer | None = None
        self._pending = 0  # beliefs queued since the last flush
        self._listener: Consumer | None = None  # answers of requests sent by this client
        self._book = AnswerBook()
        self._sent: dict[str, list[str]] = {}  # request id -> devices named
        self._request_partitions: int | None = None  # of schedule-requests, read once
        self._assets: dict[str, Asset] | None = None  # the registry's, for requests' sites
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> FlexStreamClient:
        """A client for ``KAFKA_BOOTSTRAP_SERVERS`` with the settings' security and prefix."""
        return cls(settings=settings or Settings(), **overrides)

    def topic(self, name: str) -> str:
        """The full name of project topic ``name``."""
        return self.topic_prefix + name

    def __enter__(self) -> FlexStreamClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Confirm queued readings (if any) and close the consumers."""
        try:
            if self._producer is not None and self._pending:
                self.flush()
        finally:
            with self._lock:
                if self._listener is not None:
                    self._listener.close()
                    self._listener = None

    # producers

    @property
    def producer(self) -> ConfirmingProducer:
        """The confirming producer (created on first use)."""
        if self._producer is None:
            self._producer = ConfirmingProducer(self._conf)
        return self._producer

    def _readings_topic(self, topic: str) -> str:
        if topic not in ("meter", "price"):
            raise InputError(f"{topic!r} is not a readings topic; use 'meter' or 'price'", "topic")
        return self.topic(f"readings.{topic}")

    def publish_readings(
        self,
        sensor: str,
        start: datetime,
        resolution: timedelta,
        values: Iterable[float],
        *,
        source: str,
        belief_time: datetime | None = None,
        belief_horizon: timedelta | None = None,
        unit: str | None = None,
        cumulative_probability: float = 0.5,
        topic: Topic = "meter",
        wait: bool = True,
        check: bool | None = None,
    ) -> Receipt:
        """Publish a regular series (event ``i`` starts at ``start + i * resolution``).

        Long series are split into messages of at most ``max_values`` values.
        Returns a :class:`Receipt` (``beliefs``: how many were sent), confirmed by
        the broker (with ``wait=False``: queued; :meth:`flush` confirms them);
        :meth:`wait_landed` follows it to where it lands. Without
        ``belief_time`` and ``belief_horizon`` the values are believed at the
        time of publishing (``clock``), as with ``flexstream publish``; give
        ``belief_horizon=timedelta(0)`` for measurements known at their event's
        end. Checked first (see the class; ``check`` overrides the client's
        choice): a refused series raises :class:`InputError` and sends nothing.
        NaN is sent, but the worker dead-letters it (with the rest of its
        message's values stored).
        """
        full = self._readings_topic(topic)
        records = batch_records(
            sensor,
            start,
            resolution,
            values,
            source=source,
            belief_time=publishing_belief_time(belief_time, belief_horizon, self.clock),
            belief_horizon=belief_horizon,
            unit=unit,
            cumulative_probability=cumulative_probability,
            max_values=self.max_values,
        )
        return self._send_beliefs(full, "BeliefBatch", records, wait, check)

    def publish_reading(
        self,
        sensor: str,
        event_start: datetime,
        value: float,
        *,
        resolution: timedelta,
        source: str,
        belief_time: datetime | None = None,
        belief_horizon: timedelta | None = None,
        unit: str | None = None,
        cumulative_probability: float = 0.5,
        topic: Topic = "meter",
        wait: bool = True,
        check: bool | None = None,
    ) -> Receipt:
        """Publish one belief; ``resolution`` must be the sensor's (0 for instantaneous).

        Belief time, checks and the receipt as for :meth:`publish_readings`.
        """
        full = self._readings_topic(topic)
        rec = belief_record(
            sensor,
            event_start,
            value,
            resolution=resolution,
            source=source,
            belief_time=publishing_belief_time(belief_time, belief_horizon, self.clock),
            belief_horizon=belief_horizon,
            unit=unit,
            cumulative_probability=cumulative_probability,
        )
        return self._send_beliefs(full, "Belief", [rec], wait, check)

    def _send_beliefs(
        self,
        topic: str,
        kind: Literal["Belief", "BeliefBatch"],
        records: list[dict[str, Any]],
        wait: bool,
        check: bool | None,
    ) -> Receipt:
        """Check, then queue ``kind`` records keyed by sensor; confirm them now if ``wait``."""
        if self.check if check is None else check:
            where = value_ranges(records) if kind == "BeliefBatch" else ["value"]
            self.known_sensors.check(
                [Outgoing(kind, rec, w) for rec, w in zip(records, where, strict=True)]
            )
        receipt = Receipt(
            topic=topic,
            sensor=records[0]["sensor"],
            beliefs=sum(len(r["values"]) if kind == "BeliefBatch" else 1 for r in records),
            messages=len(records),
            sent_at=self.clock(),
            dead_letters_from=self._dead_letters_now(),
        )
        confirmed = receipt.positions.append
        for rec in records:
            self.producer.send(
                topic, serde.encode(kind, rec), key=rec["sensor"], on_position=confirmed
            )
        with self._lock:
            self._pending += receipt.beliefs
        if wait:
            self.flush()
        return receipt

    def _dead_letters_now(self) -> dict[int, int] | None:
        """End offsets of the dead-letters topic, at most ``_DEAD_LETTERS_FLOOR_AGE`` s old.

        Any dead letter of a message sent after they were read lies beyond
        them. None when they cannot be read (dead letters are then read from
        the topic's start).
        """
        with self._lock:
            now = time.monotonic()
            if self._dead_letters_floor is None or (
                now - self._dead_letters_floor[0] > _DEAD_LETTERS_FLOOR_AGE
            ):
                try:
                    ends = landing.end_offsets(self._conf, self.topic("dead-letters"))
                except (ConnectorError, KafkaException):
                    ends = None
                self._dead_letters_floor = (now, ends)
            return self._dead_letters_floor[1]

    def wait_landed(
        self,
        receipts: Receipt | Iterable[Receipt],
        *,
        timeout: float = 60.0,
        every: float = 0.5,
    ) -> Landing:
        """Wait until the worker stored or dead-lettered every message of ``receipts``.

        Confirms unconfirmed receipts first (:meth:`flush`). Returns the
        :class:`~connectors.landing.Landing`: messages ``stored``,
        ``dead_lettered`` (a batch with a bad value counts here, though its other
        values are stored) and the ``dead_letters`` with their reasons. Raises
        :class:`~connectors.sdk.receipts.NotLanded` (its ``landing`` says what is
        pending) when the worker did not handle them all within ``timeout``
        seconds.
        """
        rs = [receipts] if isinstance(receipts, Receipt) else list(receipts)
        if not all(r.confirmed for r in rs):
            self.flush()
        result = landing.wait_landed(
            self._conf,
            self.readings_group,
            self.topic("dead-letters"),
            dead_letters_start(rs),
            [p for r in rs for p in r.positions],
            timeout,
            every,
        )
        return landed_or_raise(result, timeout, self.readings_group)

    def flush(self, timeout: float = 60.0) -> int:
        """Wait for the broker to confirm everything queued; return the beliefs confirmed."""
        if self._producer is None:
            return 0
        self._producer.flush(timeout)  # raises ConnectorError on any failed delivery
        with self._lock:
            n, self._pending = self._pending, 0
        return n

    # controllers

    def _consumer(self, start: Literal["beginning", "end"]) -> Consumer:
        """A consumer assigned to every partition of the schedules topic (no group, no commits)."""
        topic = self.topic("schedules")
        c = Consumer(
            {
                **self._conf,
                "group.id": f"flexstream-sdk-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "log_level": 3,
            }
        )
        try:
            meta = c.list_topics(topic, timeout=15).topics.get(topic)
            if meta is None or meta.error is not None or not meta.partitions:
                raise ConnectorError(f"topic {topic} does not exist; run 'flexstream up'")
            parts = []
            for p in meta.partitions:
                tp = TopicPartition(topic, p, OFFSET_BEGINNING)
                if start == "end":  # concrete offsets: nothing produced after this is missed
                    tp.offset = watermark_offsets(c, tp)[1]
                parts.append(tp)
            c.assign(parts)
        except Exception:
            c.close()
            raise
        return c

    def subscribe_schedules(
        self,
        sensors: Iterable[str] | None = None,
        *,
        from_beginning: bool = False,
        timeout: float | None = None,
    ) -> ScheduleSubscription:
        """Iterate over schedules as they arrive, of the given device sensors (None: all).

        Positioned on return at the end of the topic (``from_beginning``: at its
        start) with a consumer of its own, so nothing produced afterwards is
        missed. Ends after ``timeout`` seconds without a matching schedule (None:
        never); ``close()`` it, or use it as a context manager.
        """
        c = self._consumer("beginning" if from_beginning else "end")
        return ScheduleSubscription(c, sensors, timeout)

    def read_schedules(self, sensors: Iterable[str] | None = None) -> list[Schedule]:
        """Every schedule on the topic now (from its start to its end offsets), oldest first."""
        with ScheduleSubscription(self._consumer("beginning"), sensors, 30.0, until_end=True) as it:
            return list(it)

    def latest_schedule(self, sensor: str) -> Schedule | None:
        """The last schedule of ``sensor`` on the topic, or None."""
        found = self.read_schedules([sensor])
        return found[-1] if found else None

    def trigger_schedule(
        self,
        asset: str,
        start: datetime,
        duration: timedelta,
        resolution: timedelta = timedelta(minutes=15),
        *,
        devices: Iterable[str] = (),
        flex_model: Any = None,
        flex_context: Any = None,
        request_id: str | None = None,
    ) -> str:
        """Request a schedule of ``asset`` (or some ``devices``); return the request id.

        The answers are tracked from before the request is sent, so
        :meth:`get_schedule` sees them however late it is called.
        """
        rec = build_request(
            asset,
            start,
            duration,
            resolution,
            devices=devices,
            flex_model=flex_model,
            flex_context=flex_context,
            request_id=request_id,
        )
        with self._lock:
            if self._listener is None:
                self._listener = self._consumer("end")
            self._sent[rec["request_id"]] = rec["devices"]
        key, partition = self._request_route(rec["asset"])
        self.producer.send(
            self.topic("schedule-requests"),
            serde.encode("ScheduleRequest", rec),
            key=key,
            partition=partition,
        )
        self.producer.flush()
        return rec["request_id"]

    def _request_route(self, asset: str) -> tuple[str, int | None]:
        """Key and partition of a request for ``asset``.

        With one partition of ``schedule-requests`` (no site partitions): keyed
        by asset. With more: keyed by the asset's site, in the site's partition
        (:func:`~connectors.kafka.site_partition`), the site read from the
        registry (read again when the asset is not in the copy read before).
        """
        topic = self.topic("schedule-requests")
        if self._request_partitions is None:
            self._request_partitions = self.producer.partitions(topic)
        if self._request_partitions <= 1:
            return asset, None
        if self._assets is None or asset not in self._assets:
            self._assets = read_registry(self._conf, self.topic("registry")).assets
        site = site_of(asset, self._assets)
        return site, site_partition(site, self._request_partitions)

    def get_schedule(
        self,
        request_id: str,
        *,
        timeout: float = 30.0,
        expect_devices: Iterable[str] | None = None,
    ) -> list[Schedule]:
        """Wait for the answers to a request: one schedule per device, sorted by sensor.

        Completion rule: see the ``connectors.sdk`` package docstring. A request this client did not
        send is looked up from the start of the schedules topic. Raises
        :class:`ScheduleTimeout` when no answer, or not every expected device's,
        came within ``timeout`` seconds.
        """
        expect = list(expect_devices) if expect_devices is not None else None
        if expect is None:
            expect = self._sent.get(request_id) or None
        if request_id in self._sent:
            return self._collect(request_id, expect, timeout)
        history = AnswerBook()  # what the topic holds now counts as settled
        c = self._consumer("beginning")
        try:
            for sch in ScheduleSubscription(c, None, timeout, until_end=True, close=False):
                if sch.request_id == request_id:
                    history.add(sch, float("-inf"))
            return self._collect(request_id, expect, timeout, c, history)
        finally:
            c.close()

    def _collect(
        self,
        request_id: str,
        expect: list[str] | None,
        timeout: float,
        own: Consumer | None = None,
        book: AnswerBook | None = None,
    ) -> list[Schedule]:
        book = book or self._book
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            with self._lock:
                if book.complete(request_id, expect, now, self.settle):
                    self._sent.pop(request_id, None)
                    return book.pop(request_id)
                if now >= deadline:
                    got = book.pop(request_id)
                    self._sent.pop(request_id, None)
                    if got and not expect:
                        return got
                    missing = sorted(set(expect or ()) - {s.sensor for s in got})
                    raise ScheduleTimeout(
                        f"request {request_id}: "
                        + (
                            f"no answer for {', '.join(missing)} within {timeout:g} s "
                            f"(answered: {', '.join(s.sensor for s in got)})"
                            if got
                            else f"no schedule came within {timeout:g} s; is a worker "
                            f"running for topic prefix {self.topic_prefix!r}?"
                        ),
                        request_id,
                        got,
                    )
                consumer = own or self._listener
                if consumer is None:
                    raise ConnectorError("the client is closed")
                msg = consumer.poll(min(0.1, max(deadline - now, 0.001)))
                if msg is not None and not msg.error():
                    s = decode_schedule(msg.value())
                    if s is not None and (s.request_id == request_id or s.request_id in self._sent):
                        book.add(s, time.monotonic())

    def trigger_and_get_schedule(
        self,
        asset: str,
        start: datetime,
        duration: timedelta,
        resolution: timedelta = timedelta(minutes=15),
        *,
        devices: Iterable[str] = (),
        flex_model: Any = None,
        flex_context: Any = None,
        request_id: str | None = None,
        timeout: float = 30.0,
    ) -> list[Schedule]:
        """Request a schedule and wait for its answers (raises :class:`ScheduleTimeout`)."""
        rid = self.trigger_schedule(
            asset,
            start,
            duration,
            resolution,
            devices=devices,
            flex_model=flex_model,
            flex_context=flex_context,
            request_id=request_id,
        )
        return self.get_schedule(rid, timeout=timeout)
