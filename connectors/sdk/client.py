"""The FlexStream client SDK: publish readings, request schedules, follow schedules.

Two flavours over the same Kafka topics: :class:`FlexStreamClient` (blocking)
and :class:`AsyncFlexStreamClient` (asyncio; it runs the blocking calls in
threads and bridges a consumer thread to an ``asyncio.Queue``)::

    with FlexStreamClient("127.0.0.1:9092") as fs:
        fs.publish_readings("site-pv", start, timedelta(minutes=15), values, source="meter")
        schedules = fs.trigger_and_get_schedule("site", start, timedelta(days=1))

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

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import isodate
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from connectors.kafka import ConfirmingProducer
from connectors.settings import Settings
from schemas import serde
from schemas.errors import ConnectorError, InputError

Topic = Literal["meter", "price"]
OK_STATUSES = frozenset({"optimal", "relaxed"})
#: Values per BeliefBatch message at most (the worker accepts 50,000 by default).
MAX_VALUES = 5000
_MS = timedelta(milliseconds=1)


class ScheduleTimeout(ConnectorError):
    """No (complete) answer to a schedule request came in time; ``partial`` holds what did."""

    def __init__(self, message: str, request_id: str, partial: list[Schedule]) -> None:
        self.request_id = request_id
        self.partial = partial
        super().__init__(message)


# --- pure parts -----------------------------------------------------------------------------


def _aware(value: Any, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise InputError(f"expected a datetime, got {type(value).__name__}", name)
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            f"{value.isoformat()} has no UTC offset; pass an aware datetime, "
            "e.g. datetime(..., tzinfo=UTC)",
            name,
        )
    return value.astimezone(UTC)


def _duration(value: Any, name: str, positive: bool = True) -> timedelta:
    if not isinstance(value, timedelta):
        raise InputError(f"expected a timedelta, got {type(value).__name__}", name)
    if positive and value <= timedelta(0):
        raise InputError(f"{value} must be positive", name)
    if value % _MS:
        raise InputError(f"{value} is not a whole number of milliseconds", name)
    return value


def _name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected a non-empty name, got {value!r}", name)
    return value


def _json_text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"is not valid JSON ({exc.msg})", name) from None
        return value
    if isinstance(value, dict | list):
        return json.dumps(value)
    raise InputError(f"expected a dict, a list or a JSON string, got {type(value).__name__}", name)


def _common(
    source: Any,
    belief_time: datetime | None,
    belief_horizon: timedelta | None,
    unit: str | None,
    cumulative_probability: float,
) -> dict[str, Any]:
    if belief_time is not None and belief_horizon is not None:
        raise InputError("give belief_time or belief_horizon, not both", "belief_horizon")
    if unit is not None:
        _name(unit, "unit")
    if not 0.0 <= float(cumulative_probability) <= 1.0:
        raise InputError(f"{cumulative_probability} is outside [0, 1]", "cumulative_probability")
    horizon = (
        _duration(belief_horizon, "belief_horizon", positive=False) if belief_horizon else None
    )
    return {
        "belief_time": _aware(belief_time, "belief_time") if belief_time is not None else None,
        "belief_horizon_ms": horizon // _MS if horizon is not None else None,
        "source": _name(source, "source"),
        "cumulative_probability": float(cumulative_probability),
        "unit": unit,
    }


def _floats(values: Any) -> list[float]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InputError("expected a sequence of numbers", "values")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise InputError(f"{v!r} is not a number", f"values[{i}]") from None
    return out


def batch_records(
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
    max_values: int = MAX_VALUES,
) -> list[dict[str, Any]]:
    """``BeliefBatch`` records of a regular series, at most ``max_values`` values each.

    Message ``k`` starts at ``start + k * max_values * resolution`` (exact for
    fixed-length steps; a series of whole local days across DST should fit in one
    message). NaN and infinite values are sent as they are: the worker
    dead-letters each of them alone and stores the rest.
    """
    sensor = _name(sensor, "sensor")
    start = _aware(start, "start")
    resolution = _duration(resolution, "resolution")
    common = _common(source, belief_time, belief_horizon, unit, cumulative_probability)
    series = _floats(values)
    if not series:
        raise InputError("the series is empty; send at least one value", "values")
    if max_values < 1:
        raise InputError(f"{max_values} must be at least 1", "max_values")
    return [
        {
            "sensor": sensor,
            "start": start + i * resolution,
            "resolution_ms": resolution // _MS,
            "values": series[i : i + max_values],
            **common,
        }
        for i in range(0, len(series), max_values)
    ]


def belief_record(
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
) -> dict[str, Any]:
    """One ``Belief`` record; ``resolution`` is the event's duration (0 for instantaneous)."""
    try:
        event_value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{value!r} is not a number", "value") from None
    return {
        "sensor": _name(sensor, "sensor"),
        "event_start": _aware(event_start, "event_start"),
        "event_resolution_ms": _duration(resolution, "resolution", positive=False) // _MS,
        "event_value": event_value,
        **_common(source, belief_time, belief_horizon, unit, cumulative_probability),
    }


def build_request(
    asset: str,
    start: datetime,
    duration: timedelta,
    resolution: timedelta = timedelta(minutes=15),
    *,
    devices: Iterable[str] = (),
    flex_model: Any = None,
    flex_context: Any = None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A ``ScheduleRequest`` record; ``flex_model``/``flex_context`` are JSON-able or JSON text."""
    if isinstance(devices, str):
        raise InputError(f"give a list of sensor names, e.g. [{devices!r}]", "devices")
    duration = _duration(duration, "duration")
    resolution = _duration(resolution, "resolution")
    if duration % resolution:
        raise InputError(f"{duration} is not a whole number of {resolution} steps", "duration")
    return {
        "request_id": _name(request_id, "request_id") if request_id else str(uuid.uuid4()),
        "asset": _name(asset, "asset"),
        "devices": [_name(d, f"devices[{i}]") for i, d in enumerate(devices)],
        "start": _aware(start, "start"),
        "duration_ms": duration // _MS,
        "resolution_ms": resolution // _MS,
        "flex_model": _json_text(flex_model, "flex_model"),
        "flex_context": _json_text(flex_context, "flex_context"),
        "requested_at": now if now is not None else datetime.now(UTC),
        "origin": "request",
    }


@dataclass(frozen=True)
class Schedule:
    """The schedule of one device (``schedule.avsc``); power: consumption positive."""

    request_id: str
    asset: str
    sensor: str
    status: str
    start: datetime
    resolution: timedelta
    belief_time: datetime
    values: list[float] = field(default_factory=list)
    unit: str = "kW"
    state_of_charge: list[float] = field(default_factory=list)
    soc_unit: str = "kWh"
    costs_total: float | None = None
    currency: str = ""
    costs: dict[str, Any] = field(default_factory=dict)
    breaches: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    solver_time_ms: float = 0.0
    origin: str = "request"
    answered_devices: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the schedule can be followed (status optimal or relaxed)."""
        return self.status in OK_STATUSES

    @property
    def timestamps(self) -> list[datetime]:
        """The start of each step of ``values``."""
        return [self.start + i * self.resolution for i in range(len(self.values))]

    @property
    def end(self) -> datetime:
        """The end of the last step."""
        return self.start + len(self.values) * self.resolution

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> Schedule:
        """Build from a decoded ``Schedule`` record (``costs`` and ``breaches`` are JSON)."""

        def _load(text: str, default: Any) -> Any:
            try:
                return json.loads(text) if text else default
            except json.JSONDecodeError:
                return default

        return cls(
            request_id=rec["request_id"],
            asset=rec["asset"],
            sensor=rec["sensor"],
            status=rec["status"],
            start=_aware(rec["start"], "start"),
            resolution=timedelta(milliseconds=rec["resolution_ms"]),
            belief_time=_aware(rec["belief_time"], "belief_time"),
            values=[float(v) for v in rec.get("values", [])],
            unit=rec.get("unit", "kW"),
            state_of_charge=[float(v) for v in rec.get("state_of_charge", [])],
            soc_unit=rec.get("soc_unit", "kWh"),
            costs_total=rec.get("costs_total"),
            currency=rec.get("currency", ""),
            costs=_load(rec.get("costs", "{}"), {}),
            breaches=_load(rec.get("breaches", "[]"), []),
            message=rec.get("message", ""),
            solver_time_ms=float(rec.get("solver_time_ms", 0.0)),
            origin=rec.get("origin", "request"),
            answered_devices=list(rec.get("answered_devices") or []),
        )

    def to_record(self) -> dict[str, Any]:
        """The Avro record (for ``serde.encode("Schedule", ...)``)."""
        return {
            "request_id": self.request_id,
            "asset": self.asset,
            "sensor": self.sensor,
            "status": self.status,
            "message": self.message,
            "start": self.start,
            "resolution_ms": self.resolution // _MS,
            "values": list(self.values),
            "unit": self.unit,
            "state_of_charge": list(self.state_of_charge),
            "soc_unit": self.soc_unit,
            "costs_total": self.costs_total,
            "currency": self.currency,
            "costs": json.dumps(self.costs),
            "breaches": json.dumps(self.breaches),
            "solver_time_ms": self.solver_time_ms,
            "belief_time": self.belief_time,
            "origin": self.origin,
            "answered_devices": list(self.answered_devices),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict with ISO 8601 times and durations (NaN becomes null)."""

        def num(v: float | None) -> float | None:
            return v if v is not None and math.isfinite(v) else None

        return {
            "request_id": self.request_id,
            "asset": self.asset,
            "sensor": self.sensor,
            "status": self.status,
            "message": self.message,
            "start": self.start.isoformat(),
            "resolution": isodate.duration_isoformat(self.resolution),
            "unit": self.unit,
            "values": [num(v) for v in self.values],
            "soc_unit": self.soc_unit,
            "state_of_charge": [num(v) for v in self.state_of_charge],
            "costs_total": num(self.costs_total),
            "currency": self.currency,
            "costs": self.costs,
            "breaches": self.breaches,
            "solver_time_ms": self.solver_time_ms,
            "belief_time": self.belief_time.isoformat(),
            "origin": self.origin,
            "answered_devices": list(self.answered_devices),
        }


def decode_schedule(value: bytes | None) -> Schedule | None:
    """A message of the schedules topic as a :class:`Schedule`; None if it is not one."""
    if not value:
        return None
    try:
        kind, rec = serde.decode(value)
        return Schedule.from_record(rec) if kind == "Schedule" else None
    except (InputError, KeyError, TypeError):
        return None


def collapse(schedules: Iterable[Schedule]) -> list[Schedule]:
    """One schedule per (request id, sensor): the last one, in first-seen order."""
    out: dict[tuple[str, str], Schedule] = {}
    for s in schedules:
        out.pop((s.request_id, s.sensor), None)
        out[(s.request_id, s.sensor)] = s
    return sorted(out.values(), key=lambda s: s.sensor)


class AnswerBook:
    """Answers received per request id, with the completion rule of ``get_schedule``."""

    def __init__(self) -> None:
        self._answers: dict[str, dict[str, Schedule]] = {}
        self._last: dict[str, float] = {}

    def add(self, schedule: Schedule, arrived: float) -> None:
        """Record an answer (a later one for the same sensor replaces the earlier)."""
        self._answers.setdefault(schedule.request_id, {})[schedule.sensor] = schedule
        self._last[schedule.request_id] = arrived

    def answers(self, request_id: str) -> list[Schedule]:
        """The answers so far, one per sensor, sorted by sensor."""
        return sorted(self._answers.get(request_id, {}).values(), key=lambda s: s.sensor)

    def complete(
        self, request_id: str, expect: Sequence[str] | None, now: float, settle: float
    ) -> bool:
        """Every expected device answered, or (expect None) no new answer for ``settle`` s."""
        got = self._answers.get(request_id)
        if not got:
            return False
        if not expect:
            # Answers name every device of their request (schema version 2).
            expect = next((s.answered_devices for s in got.values() if s.answered_devices), None)
        if expect:
            return set(expect) <= set(got)
        return now - self._last[request_id] >= settle

    def pop(self, request_id: str) -> list[Schedule]:
        """Take the answers of a request out of the book."""
        out = self.answers(request_id)
        self._answers.pop(request_id, None)
        self._last.pop(request_id, None)
        return out


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


# --- the synchronous client -----------------------------------------------------------------


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
        for rec in records:
            self.producer.send(full, serde.encode("BeliefBatch", rec), key=rec["sensor"])
        n = sum(len(r["values"]) for r in records)
        with self._lock:
            self._pending += n
        return self.flush() if wait else n

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
        self.producer.send(full, serde.encode("Belief", rec), key=rec["sensor"])
        with self._lock:
            self._pending += 1
        return self.flush() if wait else 1

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

        Completion rule: see the module docstring. A request this client did not
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


# --- the asyncio client ---------------------------------------------------------------------


class ScheduleStream:
    """An async iterator of schedules fed by a consumer thread.

    Cancelling the task that awaits it, ``aclose()``, or leaving ``async with``
    stops the thread, which closes its consumer. ``async with`` (or
    :meth:`started`) waits until the consumer is positioned.
    """

    _END = object()

    def __init__(
        self,
        client: FlexStreamClient,
        sensors: Iterable[str] | None,
        from_beginning: bool,
        timeout: float | None,
    ) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._positioned = asyncio.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(client, sensors, from_beginning, timeout), daemon=True
        )
        self._thread.start()

    def _put(self, item: Any) -> None:
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the loop is closed
            self._stop.set()

    def _run(self, client: FlexStreamClient, sensors: Any, begin: bool, timeout: Any) -> None:
        try:
            sub = client.subscribe_schedules(sensors, from_beginning=begin, timeout=timeout)
            sub.stop = self._stop
            self._loop.call_soon_threadsafe(self._positioned.set)
            with sub:
                for s in sub:
                    self._put(s)
        except Exception as exc:  # noqa: BLE001 - re-raised in the reader's task
            self._put(exc)
        finally:
            self._put(self._END)
            try:
                self._loop.call_soon_threadsafe(self._positioned.set)
            except RuntimeError:  # the loop is closed
                pass

    async def started(self) -> None:
        """Wait until the consumer is positioned (or failed)."""
        get = asyncio.ensure_future(self._positioned.wait())
        await asyncio.wait([get], timeout=30)
        get.cancel()

    def __aiter__(self) -> ScheduleStream:
        return self

    async def __anext__(self) -> Schedule:
        try:
            item = await self._queue.get()
        except asyncio.CancelledError:  # the reader was cancelled: stop the thread too
            self._stop.set()
            raise
        if item is self._END:
            self._stop.set()
            raise StopAsyncIteration
        if isinstance(item, Exception):
            raise item
        return item

    async def aclose(self) -> None:
        """Stop the consumer thread and wait until its consumer is closed."""
        self._stop.set()
        await asyncio.to_thread(self._thread.join, 10)

    async def __aenter__(self) -> ScheduleStream:
        await self.started()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        """True once the consumer thread has ended."""
        return not self._thread.is_alive()


class AsyncFlexStreamClient:
    """The asyncio flavour: the same API, awaitable; blocking calls run in threads.

    Cancelling an awaited call does not stop its thread early: the blocking call
    ends at its own timeout. :meth:`subscribe_schedules` is cancellable at once.
    """

    def __init__(self, bootstrap_servers: str | None = None, **kwargs: Any) -> None:
        self.sync = FlexStreamClient(bootstrap_servers, **kwargs)

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **kw: Any) -> AsyncFlexStreamClient:
        """A client for ``KAFKA_BOOTSTRAP_SERVERS`` with the settings' security and prefix."""
        return cls(settings=settings or Settings(), **kw)

    async def __aenter__(self) -> AsyncFlexStreamClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Confirm queued readings and close the consumers."""
        await asyncio.to_thread(self.sync.close)

    async def publish_readings(self, *args: Any, **kwargs: Any) -> int:
        """See :meth:`FlexStreamClient.publish_readings`."""
        return await asyncio.to_thread(self.sync.publish_readings, *args, **kwargs)

    async def publish_reading(self, *args: Any, **kwargs: Any) -> int:
        """See :meth:`FlexStreamClient.publish_reading`."""
        return await asyncio.to_thread(self.sync.publish_reading, *args, **kwargs)

    async def flush(self, timeout: float = 60.0) -> int:
        """See :meth:`FlexStreamClient.flush`."""
        return await asyncio.to_thread(self.sync.flush, timeout)

    async def trigger_schedule(self, *args: Any, **kwargs: Any) -> str:
        """See :meth:`FlexStreamClient.trigger_schedule`."""
        return await asyncio.to_thread(self.sync.trigger_schedule, *args, **kwargs)

    async def get_schedule(self, request_id: str, **kwargs: Any) -> list[Schedule]:
        """See :meth:`FlexStreamClient.get_schedule`."""
        return await asyncio.to_thread(self.sync.get_schedule, request_id, **kwargs)

    async def trigger_and_get_schedule(self, *args: Any, **kwargs: Any) -> list[Schedule]:
        """See :meth:`FlexStreamClient.trigger_and_get_schedule`."""
        return await asyncio.to_thread(self.sync.trigger_and_get_schedule, *args, **kwargs)

    def subscribe_schedules(
        self,
        sensors: Iterable[str] | None = None,
        *,
        from_beginning: bool = False,
        timeout: float | None = None,
    ) -> ScheduleStream:
        """An async iterator of schedules (``async with`` it, or ``await stream.aclose()``)."""
        return ScheduleStream(self.sync, sensors, from_beginning, timeout)


__all__ = [
    "AnswerBook",
    "AsyncFlexStreamClient",
    "FlexStreamClient",
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
