"""The site-keyed belief messages: encode and decode, and bytes that are not one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.beliefs import BeliefColumns
from streams.sites import wire


def columns(sensor: str, source: str, starts, values, res_s: int = 900) -> BeliefColumns:
    n = len(starts)
    return BeliefColumns(
        sensor=[sensor],
        event_start_us=[np.asarray(starts, dtype=np.int64)],
        event_resolution_s=[np.full(n, res_s, dtype=np.uint32)],
        belief_time_us=[np.asarray(starts, dtype=np.int64) + 1],
        source=[source],
        cumulative_probability=[np.full(n, 0.5)],
        event_value=[np.asarray(values, dtype=np.float64)],
        counts=[n],
    )


@given(
    st.text(max_size=20),
    st.text(min_size=1, max_size=20),
    st.text(max_size=10),
    st.lists(st.floats(allow_nan=False), max_size=50),
)
def test_a_group_comes_back_as_it_went(site, sensor, source, values):
    cols = columns(sensor, source, [i * 900_000_000 for i in range(len(values))], values)
    got_site, got = wire.decode(wire.encode(site, cols, 0))
    assert got_site == site and (got.sensor, got.source, got.counts) == (
        [sensor],
        [source],
        [len(values)],
    )
    for name in ("event_start_us", "event_resolution_s", "belief_time_us", "event_value"):
        assert np.array_equal(getattr(got, name)[0], getattr(cols, name)[0])


def test_the_second_group_of_a_batch_is_encoded_alone():
    cols = columns("a", "s", [0], [1.0])
    cols.extend(columns("b", "t", [0, 1], [2.0, 3.0]))
    assert list(wire.groups(cols)) == [(0, "a"), (1, "b")]
    _, got = wire.decode(wire.encode("home", cols, 1))
    assert got.sensor == ["b"] and got.event_value[0].tolist() == [2.0, 3.0]


def test_renaming_keeps_the_values():
    cols = columns("a", "s", [0, 1], [1.0, 2.0])
    out = wire.rename(cols, "home\x1fa")
    assert out.sensor == ["home\x1fa"] and cols.sensor == ["a"]
    assert out.event_value[0] is cols.event_value[0]


@pytest.mark.parametrize("data", [b"", b"XXXX" + bytes(20), b"FSS1\x01\x00"])
def test_bytes_without_the_header_are_refused(data):
    with pytest.raises(wire.WireError, match="no FSS1 header"):
        wire.decode(data)


def test_a_message_cut_short_is_refused():
    data = wire.encode("home", columns("a", "s", [0, 1], [1.0, 2.0]), 0)
    with pytest.raises(wire.WireError, match="cut short"):
        wire.decode(data[:-3])
