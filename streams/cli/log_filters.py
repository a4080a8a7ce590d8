"""Rate limits for the log lines that repeat while the Kafka broker cannot be reached.

While the broker is down, aiokafka, faust's Kafka driver and librdkafka retry
several times a second and log each failed attempt (connection refused,
metadata not updated, fetch failed): tens of error lines a second that bury
everything else. :class:`RepeatFilter` lets the first line of each kind through, holds back
the repeats of that kind for ``interval`` seconds (30 by default) and lets the
next repeat after that through with the count of those held back, e.g.
``Unable connect to node with id 1: ... [12 more like this in the last 30 s]``.
So an outage logs one line per kind every 30 s, with the count. A kind is the
logger, the level and the message template (its text before the values are
filled in), so lines that differ only in a host, a node id or an error number
are one kind. Only the loggers in ``prefixes`` are limited; FlexStream's own
lines always pass.

The filter sits on the handlers of the root logger (:func:`install`), so it
sees the records of every child logger (``aiokafka.conn``,
``aiokafka.consumer.group_coordinator``, ...), which a filter on the
``aiokafka`` logger itself would not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

#: Loggers of the Kafka clients whose repeated lines are limited (``rdkafka``: the
#: librdkafka lines of the worker's confluent-kafka clients, see connectors.registry).
NOISY_LOGGERS: tuple[str, ...] = ("aiokafka", "faust.transport", "rdkafka")

#: Seconds between two lines of one kind from the noisy loggers.
DEFAULT_INTERVAL = 30.0

_DECIDED = "_flexstream_repeat_filter"


@dataclass
class _Kind:
    since: float  # when the last line of this kind was let through
    held: int = 0  # repeats held back since then


class RepeatFilter(logging.Filter):
    """Let one line per kind and ``interval`` through from ``prefixes`` loggers, with counts.

    ``clock`` (monotonic seconds) is injectable for tests. At most ``max_kinds``
    kinds are remembered (the oldest is forgotten first), so messages that
    vary without end cannot grow the filter.
    """

    def __init__(
        self,
        prefixes: Iterable[str] = NOISY_LOGGERS,
        interval: float = DEFAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 256,
    ) -> None:
        super().__init__()
        self.prefixes = tuple(prefixes)
        self.interval = interval
        self.clock = clock
        self.max_kinds = max_kinds
        self._kinds: dict[tuple[str, int, str], _Kind] = {}
        self._lock = threading.Lock()

    def _limited(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".") for p in self.prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        """True to emit ``record``; a repeat let through carries the count held back."""
        decided = getattr(record, _DECIDED, None)
        if decided is not None:  # the same record at another handler
            return bool(decided)
        keep = self._decide(record) if self._limited(record.name) else True
        setattr(record, _DECIDED, keep)
        return keep

    def _decide(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        with self._lock:
            kind = self._kinds.get(key)
            if kind is not None and now - kind.since < self.interval:
                kind.held += 1
                return False
            self._kinds.pop(key, None)
            self._kinds[key] = _Kind(since=now)
            while len(self._kinds) > self.max_kinds:
                del self._kinds[next(iter(self._kinds))]
        if kind is not None and kind.held:
            # Fill the values in now so the note cannot disturb %-formatting.
            note = f"[{kind.held} more like this in the last {now - kind.since:.0f} s]"
            record.msg = f"{record.getMessage()} {note}"
            record.args = ()
        return True


#: Lines the Kafka client logs as errors while a consumer group forms, though it
#: retries them itself: (logger prefix, text in the message).
TRANSIENT: tuple[tuple[str, str], ...] = (
    ("aiokafka.consumer.group_coordinator", "GroupCoordinatorNotAvailableError"),
)


class TransientFilter(logging.Filter):
    """Log the client's transient errors of a normal start as info, not as errors.

    Kept when the handler shows info lines, dropped otherwise; a coordinator
    that stays away still shows in the client's later errors and in ``/ready``.
    """

    def __init__(self, show_info: bool) -> None:
        super().__init__()
        self.show_info = show_info

    def filter(self, record: logging.LogRecord) -> bool:
        """Relabel (or drop) a transient record; let every other record through."""
        if record.levelno > logging.INFO and any(
            record.name.startswith(prefix) and text in record.getMessage()
            for prefix, text in TRANSIENT
        ):
            record.levelno, record.levelname = logging.INFO, "INFO"
            return self.show_info
        return True


def install(
    logger: logging.Logger | None = None, repeat_filter: RepeatFilter | None = None
) -> RepeatFilter:
    """Put one :class:`RepeatFilter` and one :class:`TransientFilter` on every handler.

    On the handlers of ``logger`` (default: the root).
    """
    target = logger or logging.getLogger()
    flt = repeat_filter or RepeatFilter()
    for handler in target.handlers:
        if not any(isinstance(f, TransientFilter) for f in handler.filters):
            handler.addFilter(TransientFilter(show_info=target.getEffectiveLevel() <= logging.INFO))
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(flt)
    return flt
