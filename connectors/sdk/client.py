"""The blocking client: publish readings, request schedules, follow schedules."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from connectors.kafka import ConfirmingProducer
from connectors.sdk.records import (
    MAX_VALUES,
    AnswerBook,
    Schedule,
    batch_records,
    belief_record,
    build_request,
    decode_schedule,
)
from connectors.settings import Settings
from schemas import serde
from schemas.errors import ConnectorError, InputError

Topic = Literal["meter", "price"]


class ScheduleTimeout(ConnectorError):
    """No (complete) answer to a schedule request came in time; ``partial`` holds what did."""

    def __init__(self, message: str, request_id: str, partial: list[Schedule]) -> None:
        self.request_id = request_id
        self.partial = partial
        super().__init__(message)


def _watermarks(c: Consumer, tp: TopicPartition, timeout: float = 15.0) -> tuple[int, int]:
    """(low, high) offsets of a partition, retrying while its leader is not known yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            lo, hi = c.get_watermark_offsets(tp, timeout=timeout)
            return int(lo), int(hi)
        except KafkaException as exc:  # e.g. NOT_LEADER_FOR_PARTITION on a new topic
            if time.monotonic() >= deadline:
                raise ConnectorError(
                    f"offsets of {tp.topic}[{tp.partition}] unavailable: {exc}"
                ) from None
            time.sleep(0.2)


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
                lo, hi = _watermarks(consumer, tp)
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
    With ``settings``, its security options and topic prefix are used. Not meant
    to be shared by threads except through :class:`AsyncFlexStreamClient`.
    """

    def __init__(
        self,
        bootstrap_servers: str | None = None,
        *,
        topic_prefix: str = "flexstream.",
        settings: Settings | None = None,
        max_values: int = MAX_VALUES,
        settle: float = 0.5,
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
        self._producer: ConfirmingProducer | None = None
        self._pending = 0  # beliefs queued since the last flush
        self._listener: Consumer | None = None  # answers of requests sent by this client
        self._book = AnswerBook()
        self._sent: dict[str, list[str]] = {}  # request id -> devices named
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
    ) -> int:
        """Publish a regular series (event ``i`` starts at ``start + i * resolution``).

        Long series are split into messages of at most ``max_values`` values.
        Returns the number of beliefs confirmed by the broker (with ``wait=False``:
        queued; confirm them with :meth:`flush`). Without ``belief_time`` and
        ``belief_horizon`` each value is a measurement known at its event's end.
        NaN is sent, but the worker dead-letters it (alone; the rest lands).
        """
        full = self._readings_topic(topic)
        records = batch_records(
            sensor,
            start,
            resolution,
            values,
            source=source,
            belief_time=belief_time,
            belief_horizon=belief_horizon,
            unit=unit,
            cumulative_probability=cumulative_probability,
            max_values=self.max_values,
        )
        return self._send_beliefs(full, "BeliefBatch", records, wait)

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
    ) -> int:
        """Publish one belief; ``resolution`` must be the sensor's (0 for instantaneous)."""
        full = self._readings_topic(topic)
        rec = belief_record(
            sensor,
            event_start,
            value,
            resolution=resolution,
            source=source,
            belief_time=belief_time,
            belief_horizon=belief_horizon,
            unit=unit,
            cumulative_probability=cumulative_probability,
        )
        return self._send_beliefs(full, "Belief", [rec], wait)

    def _send_beliefs(
        self,
        topic: str,
        kind: Literal["Belief", "BeliefBatch"],
        records: list[dict[str, Any]],
        wait: bool,
    ) -> int:
        """Queue ``kind`` records keyed by sensor; confirm them now if ``wait``, else count them."""
        for rec in records:
            self.producer.send(topic, serde.encode(kind, rec), key=rec["sensor"])
        n = sum(len(r["values"]) if kind == "BeliefBatch" else 1 for r in records)
        with self._lock:
            self._pending += n
        return self.flush() if wait else n

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
                    tp.offset = _watermarks(c, tp)[1]
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
        self.producer.send(
            self.topic("schedule-requests"),
            serde.encode("ScheduleRequest", rec),
            key=rec["asset"],
        )
        self.producer.flush()
        return rec["request_id"]

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
