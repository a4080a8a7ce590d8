"""What a batch commits: per partition, the offset after its last message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.batch_consumer import RawMessage, next_offsets


def test_the_offset_after_each_partitions_last_message():
    msgs = [
        RawMessage("a", 0, 5, None, b""),
        RawMessage("a", 1, 9, None, b""),
        RawMessage("a", 0, 7, None, b""),
        RawMessage("b", 0, 1, None, b""),
    ]
    assert next_offsets(msgs) == {("a", 0): 8, ("a", 1): 10, ("b", 0): 2}
    assert next_offsets([]) == {}


@given(st.lists(st.tuples(st.sampled_from("ab"), st.integers(0, 3), st.integers(0, 10**12))))
def test_every_partition_commits_past_its_highest_offset(items):
    out = next_offsets(RawMessage(t, p, o, None, None) for t, p, o in items)
    assert set(out) == {(t, p) for t, p, _ in items}
    for (t, p), nxt in out.items():
        assert nxt == 1 + max(o for t2, p2, o in items if (t2, p2) == (t, p))
