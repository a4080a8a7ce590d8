"""A batch is acknowledged only after its handler returned (no broker: a stand-in stream)."""

from __future__ import annotations

import asyncio

import pytest

from connectors.settings import Settings
from streams.context import WorkerContext


class Stream:
    """Yields fixed batches like faust's ``noack_take`` and records acknowledgements."""

    def __init__(self, batches):
        self.batches = batches
        self.acked: list = []

    async def noack_take(self, max_, within):
        for b in self.batches:
            yield list(b)

    async def ack(self, event):
        self.acked.append(event)
        return True


def ctx() -> WorkerContext:
    return WorkerContext(
        app=None,
        settings=Settings(),
        bootstrap="",
        registry=None,
        sensors={},
        clock=None,
        db_executor=None,
        dead_letters=None,
    )


def test_batches_are_acked_after_they_were_handled():
    stream, seen = Stream([[1, 2], [3]]), []

    async def handle(events):
        seen.append((list(events), list(stream.acked)))

    asyncio.run(ctx().consume_batches(stream, handle))
    assert seen == [([1, 2], []), ([3], [1, 2])]
    assert stream.acked == [1, 2, 3]


def test_a_failing_batch_is_not_acked_and_the_failure_propagates():
    stream = Stream([[1, 2], [3, 4], [5]])

    async def handle(events):
        if 3 in events:
            raise RuntimeError("the loop body failed")

    with pytest.raises(RuntimeError):
        asyncio.run(ctx().consume_batches(stream, handle))
    assert stream.acked == [1, 2]


def test_dead_letters_unconfirmed_are_sent_again_until_confirmed(monkeypatch):
    sent: list = []
    failures = iter([True, True, False])

    class Topic:
        async def send(self, key, value):
            fut = asyncio.get_running_loop().create_future()
            if next(failures):
                fut.set_exception(RuntimeError("MessageSizeTooLargeError"))
            else:
                fut.set_result("ok")
            sent.append(key)
            return fut

    c = ctx()
    c.dead_letters = Topic()
    c.health.started = True
    letter = {
        "reason": "r",
        "field": None,
        "error": "bad-bytes",
        "topic": "t",
        "partition": 0,
        "offset": 1,
        "item": None,
        "key": b"k",
        "value": b"v",
        "rejected_at": 0,
    }
    real_sleep = asyncio.sleep

    async def no_sleep(_):
        assert not c.health.ready  # a stuck dead letter is visible while it is retried
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    asyncio.run(c.send_dead_letters([letter]))
    assert sent == [b"k", b"k", b"k"] and c.health.ready
