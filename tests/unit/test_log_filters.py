"""The repeat filter: one line per kind and interval from the Kafka clients, with the count."""

from __future__ import annotations

import logging

import pytest

from streams.cli.log_filters import RepeatFilter, install


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def record(name: str, msg: str, *args, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


@pytest.fixture
def setup():
    clock = Clock()
    return RepeatFilter(interval=30.0, clock=clock), clock


def test_the_first_line_passes_and_repeats_are_held_back_for_the_interval(setup):
    flt, clock = setup
    conn = "aiokafka.conn"
    assert flt.filter(record(conn, "Unable connect to node with id %s: %s", 1, "refused"))
    passed = 0
    for i in range(1, 301):  # ten a second for 30 s
        clock.t = 1000.0 + i / 10
        passed += flt.filter(record(conn, "Unable connect to node with id %s: %s", 1, f"e{i}"))
    assert passed == 1  # at 30 s, with the count of those held back
    clock.t += 0.1
    assert not flt.filter(record(conn, "Unable connect to node with id %s: %s", 1, "x"))


def test_the_line_after_the_interval_carries_the_count_and_is_formatted_once(setup):
    flt, clock = setup
    name = "aiokafka.consumer.group_coordinator"
    assert flt.filter(record(name, "Failed fetch messages from %s: %s", 1, "closed"))
    for _ in range(41):
        clock.t += 0.5
        assert not flt.filter(record(name, "Failed fetch messages from %s: %s", 1, "closed"))
    clock.t = 1000.0 + 31
    rec = record(name, "Failed fetch messages from %s: %s", 1, "100% gone")
    assert flt.filter(rec)
    assert rec.getMessage() == (
        "Failed fetch messages from 1: 100% gone [41 more like this in the last 31 s]"
    )
    # A new window starts: the next repeat is held back again, with no count carried over.
    clock.t += 1
    assert not flt.filter(record(name, "Failed fetch messages from %s: %s", 1, "closed"))


def test_kinds_are_logger_level_and_template(setup):
    flt, _ = setup
    assert flt.filter(record("aiokafka.client", "Unable to update metadata from %s", [1]))
    assert flt.filter(record("aiokafka.conn", "Unable to update metadata from %s", [1]))
    assert flt.filter(record("aiokafka.client", "Unable to update metadata from %s", [1], level=30))
    assert flt.filter(record("aiokafka.client", "Heartbeat failed"))
    assert not flt.filter(record("aiokafka.client", "Unable to update metadata from %s", [2]))


@pytest.mark.parametrize("name", ["flexstream.worker", "faust.app", "aiokafkax", "root"])
def test_other_loggers_always_pass(setup, name):
    flt, _ = setup
    assert all(flt.filter(record(name, "same line")) for _ in range(50))


def test_a_record_is_decided_once_for_all_handlers(setup):
    flt, _ = setup
    rec = record("faust.transport.drivers.aiokafka", "Cannot reach the broker")
    assert flt.filter(rec) and flt.filter(rec)  # default and spinner handler: both emit it
    again = record("faust.transport.drivers.aiokafka", "Cannot reach the broker")
    assert not flt.filter(again) and not flt.filter(again)


def test_the_number_of_kinds_remembered_is_bounded():
    flt = RepeatFilter(clock=Clock(), max_kinds=10)
    for i in range(100):
        assert flt.filter(record("rdkafka.registry", f"line {i}"))
    assert len(flt._kinds) == 10


def test_install_puts_one_filter_on_every_handler_of_the_logger():
    logger = logging.getLogger("test-log-filters")
    logger.propagate = False
    handlers = [logging.NullHandler(), logging.NullHandler()]
    for h in handlers:
        logger.addHandler(h)
    try:
        flt = install(logger)
        assert install(logger, RepeatFilter()) is not flt
        assert [[f for f in h.filters if isinstance(f, RepeatFilter)] for h in handlers] == [
            [flt],
            [flt],
        ]
        assert all(
            sum(type(f).__name__ == "TransientFilter" for f in h.filters) == 1 for h in handlers
        )
    finally:
        for h in handlers:
            logger.removeHandler(h)


def _record(name: str, level: int, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, None, None)


def test_the_coordinator_error_of_a_normal_start_is_info_and_hidden_at_warning_level():
    from streams.cli.log_filters import TransientFilter

    rec = _record(
        "aiokafka.consumer.group_coordinator",
        logging.ERROR,
        "Group Coordinator Request failed: [Error 15] GroupCoordinatorNotAvailableError",
    )
    assert TransientFilter(show_info=False).filter(rec) is False
    assert rec.levelname == "INFO"
    rec2 = _record("aiokafka.consumer.group_coordinator", logging.ERROR, "something else")
    assert TransientFilter(show_info=False).filter(rec2) is True and rec2.levelname == "ERROR"
    rec3 = _record(
        "aiokafka.consumer.group_coordinator", logging.ERROR, "GroupCoordinatorNotAvailableError"
    )
    assert TransientFilter(show_info=True).filter(rec3) is True and rec3.levelno == logging.INFO
