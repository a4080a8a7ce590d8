"""Log lines as JSON, one object per line, for log collectors.

``flexstream worker --log-format json`` puts :class:`JsonFormatter` on the
handlers of the root logger. Each line is one JSON object::

    {"time": "2026-04-01T10:15:02.125Z", "level": "WARNING",
     "logger": "flexstream.worker", "message": "...", "exception": "Traceback ..."}

``time`` is the record's creation time in UTC (ISO 8601, milliseconds, ``Z``);
``exception`` (the formatted traceback) and ``stack`` appear only when the
record carries them. Newlines inside a message or a traceback are escaped by
JSON, so a record never spans lines.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

from schemas.times import format_utc

#: The log formats the worker offers.
LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[str, ...] = ("text", "json")


class JsonFormatter(logging.Formatter):
    """Format a record as one line of JSON: time, level, logger, message, exception."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """The record's creation time in UTC, ISO 8601 with milliseconds (``...Z``)."""
        return format_utc(datetime.fromtimestamp(record.created, UTC), "milliseconds")

    def format(self, record: logging.LogRecord) -> str:
        """The JSON object of ``record`` on one line."""
        entry: dict[str, str] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def use_json(logger: logging.Logger | None = None) -> None:
    """Format every handler of ``logger`` (default: the root) as JSON lines.

    Python's warnings are routed through logging too, so they come as JSON as well.
    """
    target = logger or logging.getLogger()
    for handler in target.handlers:
        handler.setFormatter(JsonFormatter())
    logging.captureWarnings(True)
