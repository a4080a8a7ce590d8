"""The registry: sensors, assets and forecasters as events on a compacted topic.

Writers publish a ``RegistryEvent`` keyed ``<kind>:<name>``; compaction keeps
the latest event per key, so the topic *is* the registry. Every reader holds all
of it (a global view): :class:`RegistryView` reads every partition from the
beginning without a consumer group, catches up to the end offsets, and then
follows new events, calling listeners on each change.

Kinds and schema versions: ``RegistryEvent`` version 2 (schema id 11) added the
kind ``forecaster``; version 1 events (id 5) read unchanged. A reader older
than version 2 rejects forecaster events as an unknown schema id (logged,
skipped) and keeps its sensors and assets; a forecaster's tombstone has the key
``forecaster:<name>``, which this view applies to its forecasters only.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from pydantic import BaseModel

from connectors.kafka import ConfirmingProducer, watermark_offsets
from schemas import serde
from schemas.assets import Asset
from schemas.beliefs import Sensor, load_sensors
from schemas.documents import load_document, parse_model
from schemas.errors import ConnectorError, InputError
from schemas.forecaster import Forecaster

log = logging.getLogger("flexstream.registry")

Listener = Callable[[str, str, BaseModel | None], None]
Entry = Sensor | Asset | Forecaster

#: The model of each kind of registry entry.
KINDS: dict[str, type[Entry]] = {"sensor": Sensor, "asset": Asset, "forecaster": Forecaster}


def kind_of(item: Entry) -> str:
    """The registry kind of a definition."""
    for kind, model in KINDS.items():
        if isinstance(item, model):
            return kind
    raise TypeError(f"{type(item).__name__} is not a registry entry")


def registry_key(kind: str, name: str) -> str:
    """The message key of a registry entry."""
    return f"{kind}:{name}"


def publish(
    producer: ConfirmingProducer, topic: str, items: list[Entry], flush: bool = True
) -> int:
    """Publish sensor, asset or forecaster definitions; returns the number confirmed."""
    now = datetime.now(UTC)
    for item in items:
        kind = kind_of(item)
        body = item.model_dump_json(by_alias=True)
        rec = {"kind": kind, "name": item.name, "body": body, "updated_at": now}
        producer.send(topic, serde.encode("RegistryEvent", rec), key=registry_key(kind, item.name))
    return producer.flush() if flush else 0


def tombstone(producer: ConfirmingProducer, topic: str, kind: str, name: str) -> int:
    """Delete a registry entry: a message with its key and no value; returns 1 when confirmed.

    Readers drop the entry; compaction later removes its earlier events too.
    """
    producer.send(topic, None, key=registry_key(kind, name))
    return producer.flush()


def decode_entry(value: bytes) -> tuple[str, str, Entry]:
    """Decode a registry message into (kind, name, model); raises InputError if invalid."""
    name, rec = serde.decode(value)
    if name != "RegistryEvent":
        raise InputError(f"a {name} is not a registry event", "value")
    data = json.loads(rec["body"])
    return rec["kind"], rec["name"], parse_model(KINDS[rec["kind"]], data, rec["kind"])


class RegistryView:
    """All entries of the registry topic, kept up to date in a background thread."""

    def __init__(self, conf: dict[str, Any], topic: str) -> None:
        self.topic = topic
        self._conf = {
            **conf,
            "group.id": "flexstream-registry-view",  # never used to commit
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "log_level": 3,
            # librdkafka's lines go through Python logging (served by poll), where the
            # worker limits the reconnect lines repeated while the broker is down.
            "logger": logging.getLogger("rdkafka.registry"),
        }
        self.sensors: dict[str, Sensor] = {}
        self.assets: dict[str, Asset] = {}
        self.forecasters: dict[str, Forecaster] = {}
        self.rejected: list[tuple[int, int, str]] = []
        self._listeners: list[Listener] = []
        self._caught_up = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: Exception | None = None

    @classmethod
    def read_once(cls, conf: dict[str, Any], topic: str, timeout: float = 30.0) -> Self:
        """Read the whole topic once and return the caught-up view (stopped)."""
        view = cls(conf, topic)
        view.start()
        try:
            view.wait_caught_up(timeout)
        finally:
            view.stop()
        return view

    def add_listener(self, fn: Listener) -> None:
        """Call ``fn(kind, name, model_or_None)`` after every change (in the view's thread)."""
        self._listeners.append(fn)

    def start(self) -> RegistryView:
        """Start following the topic."""
        self._thread = threading.Thread(target=self._run, name="registry-view", daemon=True)
        self._thread.start()
        return self

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Block until every event that existed at start has been read."""
        if not self._caught_up.wait(timeout):
            raise ConnectorError(
                f"the registry topic {self.topic} could not be read within {timeout:.0f} s"
                + (f": {self._error}" if self._error else "")
            )

    def stop(self) -> None:
        """Stop following."""
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _apply(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        if value is None:
            if not key:
                return
            kind, _, name = key.decode().partition(":")
            target = self._entries(kind)
            if target is not None and target.pop(name, None) is not None:
                log.info("registry: %s %s deleted", kind, name)
                self._tell(kind, name, None)
            return
        try:
            kind, name, model = decode_entry(value)
        except (InputError, ValueError, KeyError) as exc:
            self.rejected.append((partition, offset, str(exc)))
            log.warning("registry entry %s[%d]@%d rejected: %s", self.topic, partition, offset, exc)
            return
        self._entries(kind)[name] = model  # type: ignore[index]
        self._tell(kind, name, model)

    def _entries(self, kind: str) -> dict[str, Any] | None:
        """The entries of ``kind`` (None for a kind this view does not know)."""
        return {"sensor": self.sensors, "asset": self.assets, "forecaster": self.forecasters}.get(
            kind
        )

    def forecasters_of(self, sensor: str) -> list[Forecaster]:
        """The forecasters whose target is ``sensor``, by name."""
        return [f for _, f in sorted(dict(self.forecasters).items()) if f.sensor == sensor]

    def _tell(self, kind: str, name: str, model: BaseModel | None) -> None:
        """Call the listeners with a change (``model`` None: deleted)."""
        for fn in self._listeners:
            try:
                fn(kind, name, model)
            except Exception:  # noqa: BLE001 - a listener must not stop the view
                log.exception("registry listener failed for %s:%s", kind, name)

    def _run(self) -> None:
        try:
            consumer = Consumer(self._conf)
            md = consumer.list_topics(self.topic, timeout=15)
            tmeta = md.topics.get(self.topic)
            if tmeta is None or tmeta.error is not None:
                raise ConnectorError(
                    f"registry topic {self.topic} does not exist; run flexstream up"
                )
            parts = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in tmeta.partitions]
            ends = {}
            for tp in parts:
                lo, hi = watermark_offsets(consumer, tp)
                if hi > lo:
                    ends[tp.partition] = hi
            consumer.assign(parts)
        except Exception as exc:  # noqa: BLE001 - reported through wait_caught_up
            self._error = exc
            log.error("registry view failed to start: %s", exc)
            return
        if not ends:
            self._caught_up.set()
        while not self._stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            self._apply(msg.key(), msg.value(), msg.partition(), msg.offset())
            if not self._caught_up.is_set():
                p = msg.partition()
                if p in ends and msg.offset() + 1 >= ends[p]:
                    del ends[p]
                if not ends:
                    self._caught_up.set()
        consumer.close()


def read_registry(conf: dict[str, Any], topic: str, timeout: float = 30.0) -> RegistryView:
    """Read the whole registry once and return the caught-up view (stopped)."""
    return RegistryView.read_once(conf, topic, timeout)


def known_sensors(
    conf: dict[str, Any], topic: str, sensors_file: Path | None = None, timeout: float = 30.0
) -> Mapping[str, Sensor]:
    """The sensors a worker knows: the registry's, read now, then those of its sensors file.

    As in the worker, a registered sensor takes precedence over the file's of the same name.
    """
    from_file = load_sensors(load_document(sensors_file), str(sensors_file)) if sensors_file else {}
    return {**from_file, **read_registry(conf, topic, timeout).sensors}
