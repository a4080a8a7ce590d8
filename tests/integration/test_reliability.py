"""Drills against the real broker and engine: nothing lost, nothing stalled, counted exactly.

Each drill publishes valid readings together with what used to break the worker
(a poison message, a rejected message over 1 MB, a series touching 101 months,
a SIGKILL during live single-reading ingest, a broker restart while the SDK
publishes) and checks count, sum and distinct keys with FINAL, the dead
letters, and that the worker is alive and ready afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from connectors.kafka import ensure_topics
from connectors.sdk import FlexStreamClient
from infra import kafka_local
from schemas import serde
from tests.integration.conftest import DIST, batch, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, tzinfo=UTC)
TOTALS = (
    "SELECT count(), round(sum(event_value), 4), "
    "uniqExact(sensor, event_start, source, belief_time) FROM flexstream.beliefs FINAL "
    "WHERE sensor = '{sensor}'"
)


def totals(fs, sensor: str) -> tuple[int, float, int]:
    return tuple(fs.sql(TOTALS.format(sensor=sensor))[0])


def ready(fs) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{fs.web_port}/ready", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def load_batches(n: int, start: datetime = T0) -> tuple[list[tuple[str, bytes]], float]:
    msgs, total = [], 0.0
    for i in range(n):
        values = [round(i + j / 100, 2) for j in range(96)]
        total += sum(values)
        msgs.append(("load", batch("load", start + timedelta(days=i), values, source="meter")))
    return msgs, round(total, 4)


def letters(fs, expect: int) -> list[dict]:
    return [serde.decode(m.value())[1] for m in fs.consume_all("dead-letters", expect=expect)]


def test_a_poison_message_is_dead_lettered_and_the_rest_of_its_batch_lands(fs):
    proc = fs.start_worker()
    valid, total = load_batches(50)
    poison = batch("price", datetime(9999, 12, 30, 23, tzinfo=UTC), [1.0] * 24, res_ms=3_600_000)
    early = batch("price", datetime(1, 1, 1, tzinfo=UTC), [2.0], res_ms=3_600_000)
    fs.publish("readings.meter", valid[:25] + [("price", poison), ("price", early)] + valid[25:])
    wait_for(lambda: totals(fs, "load")[0] >= 4800, what="the 4,800 valid readings")
    assert totals(fs, "load") == (4800, total, 4800)
    got = letters(fs, 2)
    assert sorted((d["error"], d["field"]) for d in got) == [
        ("out-of-range", "start"),
        ("out-of-range", "start"),
    ]
    assert {d["value"] for d in got} == {poison, early}
    assert proc.poll() is None
    assert ready(fs)[0] == 200
    for path in ("/health", "/health/"):
        with urllib.request.urlopen(f"http://127.0.0.1:{fs.web_port}{path}", timeout=5) as r:
            health = json.loads(r.read())
        assert health["ready"] and health["started"] and health["written"] >= 4800


def test_a_rejected_message_over_1_mb_still_gets_its_dead_letter_and_so_do_the_others(fs):
    proc = fs.start_worker()
    huge = batch("load", T0, [1.0] * 150_000)  # over the 50,000 values per message
    assert len(huge) > 1_000_000
    ghosts = [("ghost", batch("ghost", T0, [float(i)])) for i in range(17)]
    valid, total = load_batches(10)
    fs.publish("readings.meter", [("load", huge), *ghosts, *valid])
    got = letters(fs, 18)
    assert len(got) == 18
    [big] = [d for d in got if d["error"] == "oversized-batch"]
    assert big["value_truncated"] and big["value_size"] == len(huge)
    assert big["value_sha256"] == hashlib.sha256(huge).hexdigest()
    assert huge.startswith(big["value"]) and len(big["value"]) == 256 * 1024
    assert sorted(d["value"] for d in got if d["error"] == "unknown-sensor") == sorted(
        v for _, v in ghosts
    )
    wait_for(lambda: totals(fs, "load")[0] >= 960, what="the valid readings")
    assert totals(fs, "load") == (960, total, 960)
    assert proc.poll() is None and ready(fs)[0] == 200


def test_a_series_touching_101_months_lands_and_does_not_stall_the_others(fs):
    proc = fs.start_worker()
    month_ms = 31 * 86_400_000
    soc = batch("soc", datetime(2010, 1, 1, tzinfo=UTC), [float(i) for i in range(101)], month_ms)
    valid, total = load_batches(20)
    fs.publish("readings.meter", [("soc", soc), *valid])
    wait_for(lambda: totals(fs, "load")[0] >= 1920, timeout=60, what="the readings after it")
    wait_for(lambda: totals(fs, "soc")[0] == 101, timeout=60, what="the 101-month series")
    assert totals(fs, "soc") == (101, float(sum(range(101))), 101)
    months = fs.sql(
        "SELECT uniqExact(toYYYYMM(event_start)) FROM flexstream.beliefs WHERE sensor = 'soc'"
    )[0][0]
    assert months == 101
    assert totals(fs, "load") == (1920, total, 1920)
    assert proc.poll() is None and ready(fs)[0] == 200


def test_worker_killed_during_live_single_reading_ingest_loses_and_duplicates_nothing(fs):
    fs.extra_env["FLEXSTREAM_WORKER_BATCH_MAX"] = "20"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = now.replace(minute=0) - timedelta(hours=30)
    n = 3000  # one-minute readings of an instantaneous sensor: all inside the belief state
    msgs, total = [], 0.0
    for i in range(n):
        value = round(i / 10, 1)
        total += value
        rec = {
            "sensor": "soc",
            "event_start": start + timedelta(seconds=30 * i),
            "event_value": value,
            "source": "bms",
        }
        msgs.append(("soc", serde.encode("Belief", rec)))
    first = fs.start_worker()
    fs.publish("readings.meter", msgs)
    landed = wait_for(
        lambda: (c := totals(fs, "soc")[0]) > 0 and c, every=0.05, what="the first readings"
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    assert landed < n, "the worker finished before it could be killed mid-stream"
    fs.start_worker()
    wait_for(lambda: totals(fs, "soc")[0] >= n, timeout=180, what="all readings")
    assert totals(fs, "soc") == (n, round(total, 4), n)


def test_readings_published_through_a_broker_restart_land_exactly_once(fs, tmp_path):
    data = tmp_path / "own-broker"
    ports = dict(port=kafka_local.free_port(), controller_port=kafka_local.free_port())
    info = kafka_local.start(data, DIST, **ports)
    try:
        fs.bootstrap = info.bootstrap
        ensure_topics({"bootstrap.servers": info.bootstrap}, fs.prefix)
        fs.start_worker()
        n_series, per_series = 60, 96
        published: list[int] = []
        total = 0.0
        series = []
        for i in range(n_series):
            values = [round(i + j / 1000, 3) for j in range(per_series)]
            total += sum(values)
            series.append(values)

        def publish() -> None:
            with FlexStreamClient(info.bootstrap, settings=fs.settings()) as client:
                for i, values in enumerate(series):
                    published.append(
                        client.publish_readings(
                            "load",
                            T0 + timedelta(days=i),
                            timedelta(minutes=15),
                            values,
                            source="sdk",
                            belief_horizon=timedelta(0),  # metered: known at each event's end
                        ).beliefs
                    )

        t = threading.Thread(target=publish)
        t.start()
        wait_for(lambda: len(published) >= 5, what="the first confirmed batches")
        kafka_local.stop(data)
        kafka_local.start(data, DIST, **ports)
        t.join(300)
        assert not t.is_alive() and sum(published) == n_series * per_series
        wait_for(
            lambda: totals(fs, "load")[0] >= n_series * per_series,
            timeout=180,
            what="every published reading",
        )
        assert totals(fs, "load") == (
            n_series * per_series,
            round(total, 4),
            n_series * per_series,
        )
    finally:
        for proc in fs.workers:
            proc.send_signal(signal.SIGTERM)
        for proc in fs.workers:
            proc.wait(30)
        kafka_local.stop(data)
