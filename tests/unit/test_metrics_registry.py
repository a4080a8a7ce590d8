"""The worker's metrics: an own registry per worker, dead letters by code, lag at scrape time."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from streams.metrics import Metrics


def samples(m: Metrics) -> dict:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(m.exposition().decode())
        for s in f.samples
    }


def test_two_workers_count_apart_and_leave_the_global_registry_alone():
    a, b = Metrics(), Metrics()
    a.readings_messages.inc(3)
    assert samples(a)[("flexstream_readings_messages_total", ())] == 3
    assert samples(b)[("flexstream_readings_messages_total", ())] == 0
    assert REGISTRY.get_sample_value("flexstream_readings_messages_total") is None


def test_dead_letters_are_counted_by_their_error_code():
    m = Metrics()
    m.count_dead_letters([{"error": "bad-bytes"}, {"error": "not-finite"}, {"error": "not-finite"}])
    got = samples(m)
    assert got[("flexstream_dead_letters_total", (("reason", "bad-bytes"),))] == 1
    assert got[("flexstream_dead_letters_total", (("reason", "not-finite"),))] == 2


def test_lag_is_read_from_its_source_at_scrape_time_and_can_be_dropped():
    m = Metrics()
    lag = {("t.readings.meter", 0): 5}
    m.watch_lag("g", lambda: lag)
    key = (
        "flexstream_consumer_lag",
        (("group", "g"), ("partition", "0"), ("topic", "t.readings.meter")),
    )
    assert samples(m)[key] == 5
    lag[("t.readings.meter", 0)] = 0
    assert samples(m)[key] == 0
    m.watch_lag("g", None)
    assert key not in samples(m)


def test_histograms_count_observations():
    m = Metrics()
    m.schedule_latency.observe(0.2)
    m.solver_time.observe(0.05)
    got = samples(m)
    assert got[("flexstream_schedule_latency_seconds_count", ())] == 1
    assert got[("flexstream_solver_seconds_bucket", (("le", "0.05"),))] == 1
