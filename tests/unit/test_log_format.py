"""JSON log lines: one object per line with time (UTC), level, logger, message, exception."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import UTC, datetime

from click.testing import CliRunner

from streams.cli import main
from streams.cli.log_format import JsonFormatter, use_json

CREATED = datetime(2026, 4, 1, 10, 15, 2, 125000, tzinfo=UTC).timestamp()


def record(msg: str, *args, level: int = logging.WARNING, exc_info=None) -> logging.LogRecord:
    rec = logging.LogRecord("flexstream.worker", level, __file__, 7, msg, args, exc_info)
    rec.created = CREATED
    return rec


def test_a_record_is_one_json_object_with_time_level_logger_and_message():
    line = JsonFormatter().format(record("stored %d beliefs of %s", 96, "pv"))
    assert json.loads(line) == {
        "time": "2026-04-01T10:15:02.125Z",
        "level": "WARNING",
        "logger": "flexstream.worker",
        "message": "stored 96 beliefs of pv",
    }


def test_exception_text_is_included_and_the_record_stays_on_one_line():
    try:
        raise ValueError("bad value\non two lines")
    except ValueError:
        rec = record("write failed", level=logging.ERROR, exc_info=sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["message"] == "write failed"
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ValueError: bad value\non two lines")


def test_the_time_is_utc_whatever_the_local_zone(monkeypatch):
    import time

    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        entry = json.loads(JsonFormatter().format(record("x")))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert entry["time"] == "2026-04-01T10:15:02.125Z"


def test_use_json_formats_every_handler_of_the_logger():
    logger = logging.getLogger("flexstream.test-log-format")
    logger.propagate = False
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger.addHandler(handler)
    try:
        use_json(logger)
        logger.warning("late belief for %s", "pv")
        logger.error("boom", exc_info=RuntimeError("engine down"))
    finally:
        logger.removeHandler(handler)
        logging.captureWarnings(False)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["logger"], first["message"]) == (
        "flexstream.test-log-format",
        "late belief for pv",
    )
    assert "exception" not in first
    assert second["exception"] == "RuntimeError: engine down"


def test_the_worker_offers_text_and_json_with_text_by_default():
    res = CliRunner().invoke(main, ["worker", "--help"])
    assert res.exit_code == 0
    assert "--log-format [text|json]" in res.output
    bad = CliRunner().invoke(main, ["worker", "--log-format", "xml"])
    assert bad.exit_code == 2
    assert "'xml' is not one of 'text', 'json'" in bad.output
