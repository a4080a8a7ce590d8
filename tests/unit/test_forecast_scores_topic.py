"""Scoring rounds travel on their topic and come back as the same table rows (no I/O)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from test_sink import FakeStore

from connectors.batch_consumer import RawMessage
from schemas import serde
from schemas.times import to_us
from streams.forecasting.running import (
    SCORE_COLUMNS,
    rows_of_score_record,
    score_record,
    score_rows,
)
from streams.forecasting.scoring import BucketScore
from streams.health import Health
from streams.ingest.outputs import score_parts
from streams.ingest.sink import ScoreSink

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
finite = st.floats(0, 1e6, allow_nan=False)
buckets = st.lists(
    st.builds(
        BucketScore,
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        st.integers(0, 10**6),
        finite,
        finite,
        finite,
        finite,
        st.dictionaries(st.sampled_from([0.1, 0.5, 0.9]), finite),
    ),
    min_size=1,
    max_size=5,
)


def rows(scores: list[BucketScore]) -> list[list]:
    first = to_us(NOW) - 86_400_000_000
    return score_rows("forecaster:pv", "pv", scores, first, to_us(NOW), NOW)


@given(buckets)
def test_a_round_survives_the_topic_row_for_row(scores):
    table = rows(scores)
    kind, rec = serde.decode(serde.encode("ForecastScores", score_record(table)))
    assert kind == "ForecastScores"
    assert rows_of_score_record(rec) == table
    assert all(len(r) == len(SCORE_COLUMNS) for r in rows_of_score_record(rec))


def test_score_messages_become_rows_and_anything_else_a_dead_letter():
    good = serde.encode("ForecastScores", score_record(rows([BucketScore(0, 3600, n=2)])))
    wrong = serde.encode("Belief", {"sensor": "pv", "event_start": NOW, "event_value": 1.0})
    msgs = [RawMessage("fs", 0, i, b"forecaster:pv", v) for i, v in enumerate([good, wrong, None])]
    parts, letters = score_parts(msgs, NOW, 4096)
    assert [i for i, _ in parts] == [0] and parts[0][1][0][:2] == ["forecaster:pv", "pv"]
    assert [(d["offset"], d["error"]) for d in letters] == [(1, "bad-bytes"), (2, "bad-bytes")]
    assert "not a ForecastScores" in letters[0]["reason"]


class ScoreStore(FakeStore):
    """Takes score rows; refuses a round with a poisoned count."""

    def __init__(self, down_for: int = 0) -> None:
        super().__init__(down_for)
        self.score_rows: list[list] = []

    def insert_forecast_scores(self, rows: list[list], columns: list[str]) -> None:
        assert columns == SCORE_COLUMNS
        if self.down_for > 0:
            self.down_for -= 1
            raise ConnectionError("store down")
        if any(r[SCORE_COLUMNS.index("n")] == 666 for r in rows):
            raise ValueError("Code: 53. poison")
        self.score_rows.extend(rows)


async def run(fn, *args):
    return fn(*args)


def test_the_score_sink_retries_and_hands_back_a_round_the_store_refuses():
    store, health = ScoreStore(down_for=1), Health(started=True)
    sink = ScoreSink(store, SCORE_COLUMNS, health)  # type: ignore[arg-type]
    sink.first_backoff = sink.max_backoff = 0.0
    sink.attempts_before_isolating = 2
    sink.add(rows([BucketScore(0, 3600, n=2), BucketScore(3600, 7200, n=3)]), tag=0)
    sink.add(rows([BucketScore(0, 3600, n=666)]), tag=1)
    refused = asyncio.run(sink.flush(run))
    assert [(tag, "poison" in err) for tag, err in refused] == [(1, True)]
    assert [r[SCORE_COLUMNS.index("n")] for r in store.score_rows] == [2, 3]
    assert health.ready and sink.written == 2
