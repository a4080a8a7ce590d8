"""A batch is committed only after its handler returned (no broker: a stand-in stream)."""

from __future__ import annotations

import asyncio

import pytest

from connectors.settings import Settings
from streams.context import WorkerContext


class Consumer:
    """Hands out fixed batches like a ``BatchConsumer`` and records the commits."""

    def __init__(self, batches):
        self.batches = [list(b) for b in batches]
        self.committed: list = []
        self.closed = False

    async def take(self, n, within):
        # Kept: a real consumer suspends here; one turn of the loop, not a wait for time.
        await asyncio.sleep(0)
        if not self.batches:
            self.closed = True
            return []
        return self.batches.pop(0)

    async def commit(self, msgs):
        self.committed.extend(msgs)


def ctx() -> WorkerContext:
    c = WorkerContext(
        app=None,
        settings=Settings(),
        bootstrap="",
        registry=None,
        sensors={},
        clock=None,
        db_executor=None,
        dead_letters=None,
    )
    return c


async def consume(c: WorkerContext, consumer: Consumer, handle) -> None:
    c.tables_recovered.set()
    await c.consume_batches(consumer, handle)


def test_batches_are_committed_after_they_were_handled():
    consumer, seen = Consumer([[1, 2], [3]]), []

    async def handle(msgs, prepared):
        seen.append((list(msgs), list(consumer.committed)))

    asyncio.run(consume(ctx(), consumer, handle))
    assert seen == [([1, 2], []), ([3], [1, 2])]
    assert consumer.committed == [1, 2, 3]


def test_a_failing_batch_is_not_committed_and_the_failure_propagates():
    consumer = Consumer([[1, 2], [3, 4], [5]])

    async def handle(msgs, prepared):
        if 3 in msgs:
            raise RuntimeError("the loop body failed")

    with pytest.raises(RuntimeError):
        asyncio.run(consume(ctx(), consumer, handle))
    assert consumer.committed == [1, 2]


def test_no_batch_is_handled_before_the_tables_are_recovered():
    c, consumer, seen = ctx(), Consumer([[1]]), []

    async def handle(msgs, prepared):
        seen.append(msgs)

    # Marker: the writer announces that it reached the wait for the tables, and
    # runs on into it; once announced, the batch is taken and waits there.
    waiting, in_step = asyncio.Event(), c.in_step

    async def marked_in_step():
        waiting.set()
        await in_step()

    c.in_step = marked_in_step

    async def main():
        task = asyncio.ensure_future(c.consume_batches(consumer, handle))
        await asyncio.wait_for(waiting.wait(), 10)
        assert seen == [] and consumer.committed == []
        c.tables_recovered.set()
        await task

    asyncio.run(main())
    assert seen == [[1]] and consumer.committed == [1]


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

    # Kept: the retry's backoff sleep is what is exercised; it is made instant and
    # checks, at each retry, that the stuck dead letter shows in the health.
    async def no_sleep(_):
        assert not c.health.ready  # a stuck dead letter is visible while it is retried
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", no_sleep)
    asyncio.run(c.send_dead_letters([letter]))
    assert sent == [b"k", b"k", b"k"] and c.health.ready


def test_the_next_batch_is_prepared_while_the_one_before_is_handled():
    consumer, events = Consumer([[1], [2], [3]]), []
    second_prepared = asyncio.Event()

    def prepare(msgs):
        events.append(("prepare", msgs[0]))
        if msgs[0] == 2:
            second_prepared.set()
        return msgs[0] * 10

    async def handle(msgs, prepared):
        assert prepared == msgs[0] * 10
        events.append(("handle", msgs[0]))
        if msgs[0] == 1:
            # Batch 2 is taken and prepared while batch 1 is still being handled.
            await second_prepared.wait()

    async def main():
        c = ctx()
        c.tables_recovered.set()
        # Without the overlap, handling batch 1 would wait for ever: bounded here.
        await asyncio.wait_for(c.consume_batches(consumer, handle, prepare), 10)

    asyncio.run(main())
    assert events.index(("prepare", 2)) < events.index(("handle", 2))
    assert [e for e in events if e[0] == "handle"] == [("handle", 1), ("handle", 2), ("handle", 3)]
    assert consumer.committed == [1, 2, 3]
