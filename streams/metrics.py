"""The worker's Prometheus metrics, served at ``GET /metrics`` on its web port.

Each worker has a :class:`Metrics` of its own, with its own
:class:`~prometheus_client.CollectorRegistry` (never the library's global one),
so tests and several apps in one process do not share counters. The features
count per batch, not per message: a handful of increments per batch of
readings, one per schedule request, one per closed report round.

Consumer lag is not counted: the readings consumer notes, on its own thread
and at most once a second, each assigned partition's high watermark (as its
last fetch saw it) and its position (:attr:`BatchConsumer.lag`); a scrape
reads the latest note.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

#: The text exposition format, as ``GET /metrics`` answers.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: Seconds from a schedule request taken to its schedules confirmed by Kafka.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60)
#: Seconds the solver took for one request.
SOLVER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20)

#: Per consumer group, ``(topic, partition) -> messages behind``.
LagSource = Callable[[], Mapping[tuple[str, int], int]]


class _LagCollector(Collector):
    """Reads the consumers' latest lag notes at scrape time."""

    def __init__(self) -> None:
        self.sources: dict[str, LagSource] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "flexstream_consumer_lag",
            "Messages behind the high watermark, per consumer group, topic and partition",
            labels=["group", "topic", "partition"],
        )
        for group, source in list(self.sources.items()):
            for (topic, partition), lag in sorted(source().items()):
                family.add_metric([group, topic, str(partition)], lag)
        yield family


class Metrics:
    """The metrics of one worker (see the module docstring)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.readings_messages = Counter(
            "flexstream_readings_messages",
            "Messages consumed from the readings topics",
            registry=r,
        )
        self.readings_beliefs = Counter(
            "flexstream_readings_beliefs",
            "Beliefs consumed from the readings topics that passed validation",
            registry=r,
        )
        self.beliefs_stored = Counter(
            "flexstream_beliefs_stored",
            "Beliefs written to the history, by stream (readings, reports, schedules)",
            ["stream"],
            registry=r,
        )
        self.dead_letters = Counter(
            "flexstream_dead_letters",
            "Dead letters confirmed by Kafka, by reason (the dead letter's error code)",
            ["reason"],
            registry=r,
        )
        self.schedule_requests = Counter(
            "flexstream_schedule_requests_answered",
            "Schedule requests answered (with one schedule per device, whatever its status)",
            registry=r,
        )
        self.schedule_latency = Histogram(
            "flexstream_schedule_latency_seconds",
            "From a schedule request taken by the worker to its schedules confirmed by Kafka",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.solver_time = Histogram(
            "flexstream_solver_seconds",
            "Time the solver took for one schedule request",
            buckets=SOLVER_BUCKETS,
            registry=r,
        )
        self.report_windows_closed = Counter(
            "flexstream_report_windows_closed",
            "Report windows computed for the first time, by report",
            ["report"],
            registry=r,
        )
        self.report_recomputations = Counter(
            "flexstream_report_recomputations",
            "Report windows computed again after a late belief, by report",
            ["report"],
            registry=r,
        )
        self.roles = Gauge(
            "flexstream_worker_role",
            "1 for each role this worker runs (flexstream worker --roles)",
            ["role"],
            registry=r,
        )
        self._lag = _LagCollector()
        r.register(self._lag)

    def set_roles(self, roles: list[str]) -> None:
        """Report the worker's ``roles`` (one sample, 1, per role)."""
        for role in roles:
            self.roles.labels(role).set(1)

    def watch_lag(self, group: str, source: LagSource | None) -> None:
        """Report ``source``'s lag under ``group`` (None: stop reporting the group)."""
        if source is None:
            self._lag.sources.pop(group, None)
        else:
            self._lag.sources[group] = source

    def count_dead_letters(self, letters: list[dict]) -> None:
        """Count confirmed dead letters by their error code."""
        by_reason: dict[str, int] = {}
        for d in letters:
            code = d.get("error") or "unknown"
            by_reason[code] = by_reason.get(code, 0) + 1
        for code, n in by_reason.items():
            self.dead_letters.labels(code).inc(n)

    def exposition(self) -> bytes:
        """The registry in the text exposition format (version 0.0.4)."""
        return generate_latest(self.registry)
