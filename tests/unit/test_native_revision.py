"""Native blocks at a client's protocol revision: block info and serialization bytes added."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.sql.native_revision import (
    BLOCK_INFO_REVISION,
    CUSTOM_SERIALIZATION_REVISION,
    UnsupportedType,
    at_revision,
    skip_column,
    split_args,
)

BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def string(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return varint(len(raw)) + raw


def encode(type_name: str, values: list) -> bytes:
    """Revision-0 Native data of a column (the types the tests use); none without rows."""
    if not values:
        return b""
    if type_name == "UInt32":
        return b"".join(struct.pack("<I", v) for v in values)
    if type_name == "Float64":
        return b"".join(struct.pack("<d", v) for v in values)
    if type_name == "String":
        return b"".join(string(v) for v in values)
    if type_name == "Nullable(String)":
        return bytes(v is None for v in values) + encode("String", [v or "" for v in values])
    if type_name == "Array(UInt32)":
        offsets, total = [], 0
        for v in values:
            total += len(v)
            offsets.append(struct.pack("<Q", total))
        return b"".join(offsets) + encode("UInt32", [x for v in values for x in v])
    if type_name == "LowCardinality(String)":
        keys = sorted(set(values))
        head = struct.pack("<QQQ", 1, (1 << 9) | (1 << 10), len(keys))
        return (
            head
            + encode("String", keys)
            + struct.pack("<Q", len(values))
            + bytes(keys.index(v) for v in values)
        )
    raise AssertionError(type_name)


def block(columns: list[tuple[str, str, list]]) -> bytes:
    rows = len(columns[0][2]) if columns else 0
    out = varint(len(columns)) + varint(rows)
    for name, type_name, values in columns:
        out += string(name) + string(type_name) + encode(type_name, values)
    return out


def test_block_info_and_serialization_bytes_are_added_where_the_revision_has_them():
    data = block([("a", "UInt32", [1, 2]), ("s", "String", ["x", "yz"])])
    assert at_revision(data, 0) == data
    assert at_revision(data, BLOCK_INFO_REVISION) == BLOCK_INFO + data
    want = (
        BLOCK_INFO
        + b"\x02\x02"
        + string("a")
        + string("UInt32")
        + b"\x00"
        + encode("UInt32", [1, 2])
        + string("s")
        + string("String")
        + b"\x00"
        + encode("String", ["x", "yz"])
    )
    assert at_revision(data, CUSTOM_SERIALIZATION_REVISION) == want


def test_every_block_of_a_result_gets_its_block_info():
    one = block([("n", "Float64", [1.5])])
    two = block([("n", "Float64", [2.5, 3.5])])
    assert at_revision(one + two, BLOCK_INFO_REVISION) == BLOCK_INFO + one + BLOCK_INFO + two


COLUMN = st.one_of(
    st.tuples(st.just("UInt32"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("Float64"), st.floats(allow_nan=False)),
    st.tuples(st.just("String"), st.text(max_size=200)),
    st.tuples(st.just("Nullable(String)"), st.one_of(st.none(), st.text(max_size=5))),
    st.tuples(st.just("Array(UInt32)"), st.lists(st.integers(0, 9), max_size=4)),
    st.tuples(st.just("LowCardinality(String)"), st.sampled_from(["pv", "load", ""])),
)


@given(
    types=st.lists(COLUMN.map(lambda c: c[0]), min_size=1, max_size=5),
    rows=st.integers(0, 6),
    data=st.data(),
)
def test_removing_the_added_bytes_gives_the_engines_block_back(types, rows, data):
    columns = []
    for i, type_name in enumerate(types):
        values = data.draw(
            st.lists(COLUMN.filter(lambda c, t=type_name: c[0] == t), min_size=rows, max_size=rows)
        )
        columns.append((f"c{i}", type_name, [v for _, v in values]))
    raw = block(columns)
    upgraded = at_revision(raw, CUSTOM_SERIALIZATION_REVISION)
    assert len(upgraded) == len(raw) + len(BLOCK_INFO) + len(columns)
    # Take the block info and each column's serialization byte out again.
    body = upgraded[len(BLOCK_INFO) :]
    restored = varint(len(columns)) + varint(rows)
    pos = len(restored)
    for name, type_name, values in columns:
        head = string(name) + string(type_name)
        assert body[pos : pos + len(head)] == head
        assert body[pos + len(head)] == 0
        column = encode(type_name, values)
        start = pos + len(head) + 1
        assert body[start : start + len(column)] == column
        restored += head + column
        pos = start + len(column)
    assert restored == raw and pos == len(body)


def test_types_are_split_at_top_level_commas_only():
    assert split_args("String, Array(Tuple(a UInt8, b String))") == [
        "String",
        "Array(Tuple(a UInt8, b String))",
    ]
    assert split_args("6, 'Europe/Amsterdam'") == ["6", "'Europe/Amsterdam'"]
    assert split_args("") == []


def test_fixed_width_decimal_and_named_tuple_columns_are_walked():
    assert skip_column(b"\x00" * 16, 0, "DateTime64(6, 'UTC')", 2) == 16
    assert skip_column(b"\x00" * 32, 0, "Decimal(20, 4)", 2) == 32
    data = b"\x07" + string("ab")
    assert skip_column(data, 0, "Tuple(n UInt8, s String)", 1) == len(data)


def test_an_unknown_type_is_refused_rather_than_misread():
    with pytest.raises(UnsupportedType, match="JSON"):
        at_revision(varint(1) + varint(1) + string("j") + string("JSON") + b"{}", 54460)
    with pytest.raises(ValueError, match="ends inside"):
        skip_column(b"\x05ab", 0, "String", 1)
