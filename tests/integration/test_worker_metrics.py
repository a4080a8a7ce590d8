"""GET /metrics on a real worker: counters match what was published, a schedule is timed."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas import serde
from tests.integration.conftest import batch, wait_for
from tests.integration.test_scheduling import answers, prices, register, request, soc

T0 = datetime(2026, 6, 1, tzinfo=UTC)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

pytestmark = pytest.mark.integration


def scrape(fs) -> tuple[str, Samples]:
    with urllib.request.urlopen(f"http://127.0.0.1:{fs.web_port}/metrics", timeout=10) as resp:
        content_type = resp.headers["Content-Type"]
        text = resp.read().decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return content_type, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_what_was_published_and_time_a_schedule(fs, tmp_path):
    register(fs, tmp_path)
    fs.start_worker()
    now = datetime.now(UTC)
    t0 = now.replace(minute=0, second=0, microsecond=0)
    valid = [("pv", batch("pv", T0 + timedelta(days=i), [1.0, 2.0, 3.0, 4.0])) for i in range(6)]
    valid += [
        ("da-price", prices(t0 - timedelta(hours=1), 50, now)),
        ("bat-soc", soc(t0 - timedelta(minutes=30), 4.0)),
    ]
    invalid = [
        ("pv", b"not avro at all"),  # bad-bytes
        ("ghost", batch("ghost", T0, [1.0])),  # unknown-sensor
        ("ghost", batch("ghost", T0, [2.0])),  # unknown-sensor
        ("pv", batch("pv", T0 + timedelta(minutes=7), [1.0])),  # off-grid
    ]
    partly = [("load", batch("load", T0, [1.0, float("nan"), 3.0]))]  # one not-finite item
    messages = valid + invalid + partly
    fs.publish("readings.meter", messages)
    stored = 6 * 4 + 50 + 1 + 2

    wait_for(
        lambda: value(scrape(fs)[1], "flexstream_readings_messages_total") == len(messages),
        what="every message counted",
    )
    content_type, m = scrape(fs)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert value(m, "flexstream_readings_beliefs_total") == stored
    assert value(m, "flexstream_beliefs_stored_total", stream="readings") == stored
    assert fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == stored
    dead = {
        labels[0][1]: v
        for (name, labels), v in m.items()
        if name == "flexstream_dead_letters_total"
    }
    assert dead == {"bad-bytes": 1, "unknown-sensor": 2, "off-grid": 1, "not-finite": 1}
    assert len(fs.consume_all("dead-letters", expect=5)) == 5

    def lags() -> dict:
        return {
            dict(labels)["partition"]: v
            for (name, labels), v in scrape(fs)[1].items()
            if name == "flexstream_consumer_lag"
            and dict(labels)["topic"] == fs.topic("readings.meter")
        }

    # Every partition that carried messages is caught up (the lag is noted once a second).
    wait_for(lambda: lags() and not any(lags().values()), what="no lag left")
    group = {
        dict(labels)["group"]
        for (name, labels), _ in scrape(fs)[1].items()
        if name == "flexstream_consumer_lag"
    }
    assert group == {fs.prefix + "worker.readings"}

    # One schedule: the request is answered, timed and its solve is timed.
    fs.publish("schedule-requests", [("home", request("r1", t0))])
    [ans] = answers(fs, 1)
    assert ans["status"] == "optimal", ans["message"]
    m = scrape(fs)[1]
    assert value(m, "flexstream_schedule_requests_answered_total") == 1
    assert value(m, "flexstream_schedule_latency_seconds_count") == 1
    assert value(m, "flexstream_solver_seconds_count") == 1
    solver = value(m, "flexstream_solver_seconds_sum")
    assert 0 < solver <= value(m, "flexstream_schedule_latency_seconds_sum")
    assert value(m, "flexstream_solver_seconds_bucket", le="+Inf") == 1
    assert value(m, "flexstream_beliefs_stored_total", stream="schedules") == 192 + 193
    # No report ran.
    assert not any(name.startswith("flexstream_report_") for name, _ in m)
    assert serde.decode(fs.consume_all("schedules", 1)[0].value())[0] == "Schedule"
