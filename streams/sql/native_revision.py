"""ClickHouse's Native format at a client's protocol revision, from the engine's revision-0 output.

Over HTTP, a client may name the protocol revision it decodes Native results
with (``client_protocol_version``; Grafana's ClickHouse data source, through
clickhouse-go, does). The embedded engine writes Native only at revision 0.
Two things differ at the revisions clients send, and both are added here:

- from revision 51903 each block starts with its block info (field 1
  ``is_overflows`` = 0, field 2 ``bucket_num`` = -1, then field 0: the end);
- from revision 54454 each column's type name is followed by one byte saying
  whether the column has a custom serialization (0: it has none, as here).

The column data itself is the same at every revision, but to reach the next
column the data must be walked, type by type (:func:`skip_column`). The types
walked are those of the project's tables and what analysts compute from them:
numbers, decimals, dates and times, strings, UUIDs, IP addresses, enums,
``Nullable``, ``LowCardinality``, ``Array``, ``Tuple`` and ``Map``. Another type
(e.g. ``JSON``, ``Dynamic``, ``Variant``, ``AggregateFunction``) raises
:class:`UnsupportedType`, so the client gets an error saying to cast it, not
bytes it would misread.

Pure: bytes in, bytes out.
"""

from __future__ import annotations

import re

#: The revision from which a block starts with its block info.
BLOCK_INFO_REVISION = 51903
#: The revision from which a column says whether it has a custom serialization.
CUSTOM_SERIALIZATION_REVISION = 54454

_BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"

_FIXED = {
    "UInt8": 1,
    "Int8": 1,
    "Bool": 1,
    "Enum8": 1,
    "UInt16": 2,
    "Int16": 2,
    "Enum16": 2,
    "Date": 2,
    "BFloat16": 2,
    "UInt32": 4,
    "Int32": 4,
    "Float32": 4,
    "Date32": 4,
    "DateTime": 4,
    "IPv4": 4,
    "Decimal32": 4,
    "UInt64": 8,
    "Int64": 8,
    "Float64": 8,
    "DateTime64": 8,
    "Decimal64": 8,
    "UInt128": 16,
    "Int128": 16,
    "UUID": 16,
    "IPv6": 16,
    "Decimal128": 16,
    "UInt256": 32,
    "Int256": 32,
    "Decimal256": 32,
    "Nothing": 1,
}

_NAME = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)

#: LowCardinality's index serialization: the width of the indexes (low byte) and
#: whether keys follow (bit 9).
_HAS_ADDITIONAL_KEYS = 1 << 9


class UnsupportedType(ValueError):
    """A column of a type whose Native data is not walked here."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data):
            raise ValueError("Native data ends inside a number")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _string(data: bytes, pos: int) -> tuple[str, int]:
    n, pos = _varint(data, pos)
    if pos + n > len(data):
        raise ValueError("Native data ends inside a string")
    return data[pos : pos + n].decode("utf-8"), pos + n


def _uint64(data: bytes, pos: int) -> tuple[int, int]:
    if pos + 8 > len(data):
        raise ValueError("Native data ends inside a number")
    return int.from_bytes(data[pos : pos + 8], "little"), pos + 8


def split_args(args: str) -> list[str]:
    """Top-level arguments of a type, e.g. ``"String, Array(UInt8)"`` -> two."""
    out, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(args):
        if ch == "'" and (i == 0 or args[i - 1] != "\\"):
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        elif not quote and depth == 0 and ch == ",":
            out.append(args[start:i].strip())
            start = i + 1
    tail = args[start:].strip()
    return [*out, tail] if tail or out else out


def _element_type(spec: str) -> str:
    """A tuple element's type: ``"name Type"`` (a named element) or ``"Type"``."""
    depth = 0
    for i, ch in enumerate(spec):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == " " and depth == 0:
            return spec[i + 1 :].strip()
    return spec


def _decimal_width(precision: int) -> int:
    return 4 if precision <= 9 else 8 if precision <= 18 else 16 if precision <= 38 else 32


def skip_column(data: bytes, pos: int, type_name: str, rows: int) -> int:
    """The position after ``rows`` values of ``type_name`` starting at ``pos``."""
    match = _NAME.match(type_name)
    if not match:
        raise UnsupportedType(type_name)
    name, args = match.group(1), match.group(2)
    if name in _FIXED:
        end = pos + _FIXED[name] * rows
    elif name == "Decimal":
        end = pos + _decimal_width(int(split_args(args or "")[0])) * rows
    elif name == "FixedString":
        end = pos + int(args or "0") * rows
    elif name == "String":
        end = pos
        for _ in range(rows):
            n, end = _varint(data, end)
            end += n
    elif name == "Nullable":
        end = skip_column(data, pos + rows, args or "", rows)
    elif name in ("Array", "Map"):
        total = 0
        end = pos
        for _ in range(rows):
            total, end = _uint64(data, end)  # cumulative offsets: the last is the total
        if name == "Array":
            end = skip_column(data, end, args or "", total)
        else:
            key, value = split_args(args or "")
            end = skip_column(data, skip_column(data, end, key, total), value, total)
    elif name == "Tuple":
        end = pos
        for element in split_args(args or ""):
            end = skip_column(data, end, _element_type(element), rows)
    elif name == "LowCardinality":
        end = _skip_low_cardinality(data, pos, args or "", rows)
    else:
        raise UnsupportedType(type_name)
    if end > len(data):
        raise ValueError(f"Native data ends inside a column of {type_name}")
    return end


def _skip_low_cardinality(data: bytes, pos: int, inner: str, rows: int) -> int:
    """Skip a LowCardinality column: its version, then granules of keys and indexes."""
    _version, pos = _uint64(data, pos)
    dictionary_type = inner
    nullable = _NAME.match(inner)
    if nullable and nullable.group(1) == "Nullable":
        dictionary_type = nullable.group(2) or ""
    done = 0
    while done < rows:
        kind, pos = _uint64(data, pos)
        if kind & _HAS_ADDITIONAL_KEYS:
            keys, pos = _uint64(data, pos)
            pos = skip_column(data, pos, dictionary_type, keys)
        count, pos = _uint64(data, pos)
        pos += (1 << (kind & 0xFF)) * count
        done += count
        if count == 0:
            break
    return pos


def at_revision(data: bytes, revision: int) -> bytes:
    """Native ``data`` written at revision 0, as a client of protocol ``revision`` reads it."""
    if revision < BLOCK_INFO_REVISION:
        return data
    out = bytearray()
    pos = 0
    while pos < len(data):
        out += _BLOCK_INFO
        head = pos
        columns, pos = _varint(data, pos)
        rows, pos = _varint(data, pos)
        out += data[head:pos]
        for _ in range(columns):
            start = pos
            _name, pos = _string(data, pos)
            type_name, pos = _string(data, pos)
            out += data[start:pos]
            if revision >= CUSTOM_SERIALIZATION_REVISION:
                out += b"\x00"
            begin = pos
            if rows:  # no rows, no data: not even a column's serialization prefix
                pos = skip_column(data, pos, type_name, rows)
            out += data[begin:pos]
    return bytes(out)
