"""The answers of recent requests, by request id: a request delivered again gets the same answer.

Kafka delivers a request at least once (a crash between answering and
committing replays it). A worker that sees a request id it answered lately
sends the answers it gave then, byte for byte the same (its schedules and
their belief time), instead of solving again on a belief state that may have
moved on. Bounded: the oldest request ids are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

T = TypeVar("T")

#: Request ids a scheduling worker remembers the answers of.
REMEMBERED = 10_000


class RecentAnswers(Generic[T]):
    """Answers by (request id, asset), the newest ``size`` kept (pure)."""

    def __init__(self, size: int = REMEMBERED) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = size
        self._answers: OrderedDict[tuple[str, str], T] = OrderedDict()

    def get(self, request_id: str, asset: str) -> T | None:
        """The answers given to ``request_id`` for ``asset``, if still remembered."""
        return self._answers.get((request_id, asset))

    def put(self, request_id: str, asset: str, answers: T) -> None:
        """Remember ``answers``; forget the oldest beyond ``size``."""
        key = (request_id, asset)
        self._answers[key] = answers
        self._answers.move_to_end(key)
        while len(self._answers) > self.size:
            self._answers.popitem(last=False)

    def __len__(self) -> int:
        return len(self._answers)
