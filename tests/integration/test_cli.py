"""The CLI against real parts: up/down, publish, sql, demo."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from connectors.kafka import topic_specs
from infra import kafka_local
from tests.integration.conftest import DIST, wait_for

pytestmark = pytest.mark.integration

FLEXSTREAM = [sys.executable, "-m", "streams.cli"]


def run(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FLEXSTREAM, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "CLICKHOUSE_"))}
    env.update(
        {
            "FLEXSTREAM_DATA_DIR": str(tmp_path / "data"),
            "FLEXSTREAM_KAFKA_DIST_DIR": str(DIST),
            "FLEXSTREAM_KAFKA_PORT": str(kafka_local.free_port()),
            "FLEXSTREAM_KAFKA_CONTROLLER_PORT": str(kafka_local.free_port()),
            "FLEXSTREAM_WORKER_WEB_PORT": str(kafka_local.free_port()),
            "FLEXSTREAM_WORKER_CLICKHOUSE_PORT": str(kafka_local.free_port()),
        }
    )
    yield env
    run(["down"], env)


def test_up_is_idempotent_creates_topics_and_keeps_data_across_down_up(local_env, tmp_path):
    first = run(["up"], local_env)
    assert first.returncode == 0, first.stderr
    bootstrap = first.stdout.strip().splitlines()[-1]
    assert bootstrap == f"127.0.0.1:{local_env['FLEXSTREAM_KAFKA_PORT']}"
    state = json.loads((tmp_path / "data" / "kafka" / "broker.json").read_text())
    second = run(["up"], local_env)
    assert second.returncode == 0, second.stderr
    assert (
        json.loads((tmp_path / "data" / "kafka" / "broker.json").read_text())["pid"] == state["pid"]
    )

    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = admin.list_topics(timeout=10).topics
    for spec in topic_specs():
        assert len(topics["flexstream." + spec.name].partitions) == spec.partitions
    res = ConfigResource(ConfigResource.Type.TOPIC, "flexstream.registry")
    configs = admin.describe_configs([res])[res].result(timeout=10)
    assert configs["cleanup.policy"].value == "compact"

    csv = tmp_path / "pv.csv"
    csv.write_text("event_start,event_value\n2026-01-01T00:00:00Z,1.5\n2026-01-01T00:15:00Z,2.5\n")
    pub = run(["publish", "--topic", "meter", "--sensor", "pv", "--no-check", str(csv)], local_env)
    assert pub.returncode == 0, pub.stderr
    assert "published 2 readings in 1 messages to flexstream.readings.meter" in pub.stdout

    assert run(["down"], local_env).returncode == 0
    assert kafka_local.running(tmp_path / "data" / "kafka") is None
    assert run(["up"], local_env).returncode == 0
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "check"})
    offsets = [
        c.get_watermark_offsets(TopicPartition("flexstream.readings.meter", p), timeout=10)[1]
        for p in range(3)
    ]
    c.close()
    assert sum(offsets) == 1, "the published message did not survive down/up"


def test_up_reports_a_port_in_use(local_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", int(local_env["FLEXSTREAM_KAFKA_PORT"])))
        s.listen()
        out = run(["up"], local_env)
    assert out.returncode == 2
    assert "port" in out.stderr and "in use" in out.stderr
    assert "KAFKA_BOOTSTRAP_SERVERS" in out.stderr


def test_publish_without_broker_says_what_to_do(local_env, tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("event_start,event_value\n2026-01-01T00:00:00Z,1\n2026-01-01T00:15:00Z,2\n")
    out = run(["publish", "--topic", "meter", "--sensor", "pv", str(csv)], local_env)
    assert out.returncode == 2
    assert "flexstream up" in out.stderr


def test_publish_rejects_naive_times_naming_the_field(local_env, tmp_path):
    csv = tmp_path / "x.csv"
    csv.write_text("sensor,event_start,event_value\npv,2026-01-01 00:00,1\n")
    out = run(["publish", "--topic", "meter", str(csv)], local_env)
    assert out.returncode == 2
    assert "event_start" in out.stderr and "offset" in out.stderr


def test_publish_and_sql_through_the_worker_and_directly(fs, tmp_path):
    env = fs.env
    csv = tmp_path / "load.csv"
    csv.write_text(
        "sensor,event_start,event_value,source\n"
        "load,2026-02-01T00:00:00+01:00,1.25,meter\n"
        "load,2026-02-01T00:15:00+01:00,2.5,meter\n"
        "load,2026-02-01T00:30:00+01:00,3.75,meter\n"
    )
    worker = fs.start_worker()
    out = run(["publish", "--topic", "meter", str(csv)], env)
    assert out.returncode == 0, out.stderr
    query = (
        "SELECT toString(event_start) AS t, event_value FROM flexstream.beliefs FINAL ORDER BY t"
    )
    wait_for(lambda: len(fs.sql(query)) == 3, what="3 rows")
    through_worker = run(["sql", query, "--format", "json"], env)
    assert through_worker.returncode == 0, through_worker.stderr
    assert json.loads(through_worker.stdout) == [
        {"t": "2026-01-31 23:00:00.000000", "event_value": 1.25},
        {"t": "2026-01-31 23:15:00.000000", "event_value": 2.5},
        {"t": "2026-01-31 23:30:00.000000", "event_value": 3.75},
    ]
    refused = run(["sql", "DROP TABLE flexstream.beliefs"], env)
    assert refused.returncode == 2 and "only one reading statement" in refused.stderr
    from streams import runtime

    runtime.stop_process(worker)
    direct = run(["sql", query, "--format", "csv"], env)
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout.splitlines() == [
        '"t","event_value"',
        '"2026-01-31 23:00:00.000000",1.25',
        '"2026-01-31 23:15:00.000000",2.5',
        '"2026-01-31 23:30:00.000000",3.75',
    ]
    table = run(["sql", "SELECT count() AS n FROM flexstream.beliefs FINAL"], env)
    assert table.returncode == 0 and "3" in table.stdout
    drop = run(["sql", "DROP TABLE flexstream.beliefs"], env)
    assert drop.returncode == 2 and "only one reading statement" in drop.stderr
    assert run(["sql", "SELECT count() FROM flexstream.beliefs"], env).returncode == 0
    bad = run(["sql", "SELECT nonsense FROM nowhere"], env)
    assert bad.returncode == 2 and "query failed" in bad.stderr


def test_demo_runs_end_to_end(local_env):
    out = run(["demo", "--days", "2"], local_env, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all 1008 readings landed in ClickHouse" in out.stdout
    assert "Connection refused" not in out.stderr
    for sensor in ("demo-pv", "demo-load", "demo-battery", "demo-grid", "demo-day-ahead"):
        assert sensor in out.stdout
    assert "forecasters demo-pv-ahead, demo-load-ahead trained" in out.stdout, out.stdout
    assert "status optimal" in out.stdout, out.stdout
    assert "from the latest median forecast of forecaster:demo-load-ahead" in out.stdout
    assert "from the latest median forecast of forecaster:demo-pv-ahead" in out.stdout
    for device in ("demo-battery", "demo-ev", "demo-heat-pump", "demo-heat-buffer"):
        assert f"{device}: schedule per hour" in out.stdout
    # The heat pump's heat port moves with its electricity at the hour's COP (2.4 to 3.6).
    # Both figures are printed to 0.1 kWh, hence the margin.
    pattern = r"heat pump: ([\d.]+) kWh of electricity gave ([\d.]+) kWh of heat"
    heat = re.search(pattern, out.stdout)
    assert heat is not None, out.stdout
    assert 2.4 * float(heat[1]) - 0.3 <= float(heat[2]) <= 3.6 * float(heat[1]) + 0.3
    assert "vs unscheduled baseline" in out.stdout
    assert "daily KPIs" in out.stdout and "chart.html" in out.stdout
    assert "stopped the worker and the broker it started" in out.stdout
