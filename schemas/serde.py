"""Avro serde with Confluent wire framing: magic byte 0, 4-byte big-endian schema id, payload.

No schema registry is required: each schema version the project has ever
written carries a fixed id here (:data:`SCHEMA_IDS`), and a reader resolves
the writer's version to the current one with Avro's schema resolution, so a
newer reader reads what an older writer wrote. Hand-made framing is
byte-identical to confluent-kafka's ``AvroSerializer`` for the same id.

Schemas are parsed once at import, never per message.
"""

from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import fastavro

from schemas.errors import InputError

MAGIC = 0
_HEADER = struct.Struct(">bI")

#: Fixed ids per schema file (never reuse or renumber an id).
SCHEMA_IDS: dict[int, str] = {
    1: "belief.avsc",
    2: "belief_batch.v1.avsc",
    3: "belief_batch.avsc",
    4: "dead_letter.v1.avsc",
    5: "registry_event.v1.avsc",
    6: "schedule_request.avsc",
    7: "schedule.v1.avsc",
    8: "report_definition.avsc",
    9: "schedule.v2.avsc",
    10: "dead_letter.avsc",
    11: "registry_event.avsc",
    12: "schedule.avsc",
    13: "forecast_scores.avsc",
}


class SerdeError(InputError):
    """Bytes that are not a message this project can read."""


@dataclass(frozen=True)
class Schema:
    """One parsed schema version."""

    id: int
    name: str
    parsed: Any


@cache
def _load(file: str) -> Any:
    text = resources.files("schemas").joinpath(file).read_text()
    return fastavro.parse_schema(json.loads(text))


@cache
def _by_id() -> dict[int, Schema]:
    out = {}
    for sid, file in SCHEMA_IDS.items():
        parsed = _load(file)
        out[sid] = Schema(sid, parsed["name"], parsed)
    return out


@dataclass(frozen=True)
class _Reading:
    """How to read what one schema id wrote: into the current version of its record."""

    writer: Schema
    #: The current version's parsed schema; None when the writer is the current version
    #: (fastavro then reads without schema resolution).
    reader: Any
    #: Record name without namespace, as :func:`decode` returns it.
    short_name: str


@cache
def _readings() -> dict[int, _Reading]:
    out = {}
    for sid, writer in _by_id().items():
        reader = current(writer.name)
        out[sid] = _Reading(
            writer,
            None if reader.id == sid else reader.parsed,
            writer.name.rsplit(".", 1)[-1],
        )
    return out


@cache
def current(name: str) -> Schema:
    """The newest schema version of record ``name`` (e.g. ``io.flexstream.BeliefBatch``)."""
    versions = [s for s in _by_id().values() if s.name == name or s.name.endswith("." + name)]
    if not versions:
        raise KeyError(f"no schema named {name!r}")
    return max(versions, key=lambda s: s.id)


def encode(name: str, record: dict[str, Any], schema_id: int | None = None) -> bytes:
    """Encode ``record`` with the current schema of ``name`` (or the given id) and frame it."""
    schema = _by_id()[schema_id] if schema_id is not None else current(name)
    buf = io.BytesIO()
    buf.write(_HEADER.pack(MAGIC, schema.id))
    fastavro.schemaless_writer(buf, schema.parsed, record)
    return buf.getvalue()


def schema_id_of(data: bytes) -> int:
    """Return the schema id in a framed message's header."""
    if not isinstance(data, bytes | bytearray | memoryview) or len(data) < _HEADER.size:
        raise SerdeError(
            "message is shorter than the 5-byte Confluent header; send Avro with "
            "Confluent wire framing (see schemas/*.avsc)",
            "value",
        )
    magic, sid = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SerdeError(
            f"first byte is {magic}, not the Confluent magic byte 0; "
            "frame messages as magic byte, 4-byte schema id, Avro payload",
            "value",
        )
    return sid


def decode(data: bytes) -> tuple[str, dict[str, Any]]:
    """Decode a framed message into (record name, record in the current schema version)."""
    # Runs once per consumed message: lookups are precomputed in _readings().
    if type(data) is bytes and len(data) >= _HEADER.size and data[0] == MAGIC:
        sid = _HEADER.unpack_from(data)[1]
        size = len(data)
    else:
        sid = schema_id_of(data)
        size = memoryview(data).nbytes
    reading = _readings().get(sid)
    if reading is None:
        raise SerdeError(
            f"unknown schema id {sid}; known ids are {sorted(SCHEMA_IDS)}; "
            "upgrade the reader or encode with a known schema",
            "value",
        )
    writer = reading.writer
    # BytesIO shares an immutable bytes object's buffer instead of copying it.
    payload = io.BytesIO(data)
    payload.seek(_HEADER.size)
    try:
        rec = fastavro.schemaless_reader(payload, writer.parsed, reading.reader)
    except Exception as exc:  # noqa: BLE001 - fastavro raises many types on corrupt input
        raise SerdeError(
            f"payload does not match schema {writer.name} (id {sid}): {type(exc).__name__}: {exc}",
            "value",
        ) from None
    extra = size - payload.tell()
    if extra:
        # A record that ends early is not the message that was sent (e.g. two messages
        # glued together, or bytes written with another schema): refuse it whole.
        raise SerdeError(
            f"the message has {extra} byte{'s' if extra != 1 else ''} after the "
            f"{writer.name} record (id {sid}); "
            "send exactly one framed Avro record per message",
            "value",
        )
    return reading.short_name, rec


def decode_as(data: bytes | None, name: str, what: str = "") -> dict[str, Any]:
    """Decode a framed message that must hold a ``name`` record (e.g. ``Schedule``).

    No value, bytes that are not a framed record, or a record of another kind
    raise :class:`SerdeError` (field ``value``); ``what`` names the expected
    record in that message (default: ``a <name> record``).
    """
    if data is None:
        raise SerdeError("the message has no value", "value")
    kind, rec = decode(data)
    if kind != name:
        raise SerdeError(f"a {kind} is not {what or f'a {name} record'}", "value")
    return rec
