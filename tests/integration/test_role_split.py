"""Two workers sharing the work by role: one ingests, one schedules (real broker and engine)."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from infra import kafka_local
from streams import runtime
from tests.integration.conftest import wait_for
from tests.integration.test_cli import run
from tests.integration.test_scheduling import answers, prices, register, request, soc

pytestmark = pytest.mark.integration


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return resp.read()


def metric(port: int, name: str) -> float:
    """The value of an unlabelled sample of the worker's metrics (0 when absent)."""
    for line in get(port, "/metrics").decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def test_a_schedule_only_worker_answers_and_the_ingest_worker_stores_the_schedule(fs, tmp_path):
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    register(fs, tmp_path)
    fs.extra_env["FLEXSTREAM_WORKER_ROLES"] = "ingest"
    fs.start_worker()
    # The scheduling worker: its own data folder and web port, no ClickHouse settings.
    sched_dir, sched_port = tmp_path / "scheduler", kafka_local.free_port()
    env = {
        **fs.env,
        "FLEXSTREAM_DATA_DIR": str(sched_dir),
        "FLEXSTREAM_WORKER_WEB_PORT": str(sched_port),
        "FLEXSTREAM_WORKER_ROLES": "",
    }
    proc = runtime.spawn_worker(env, sched_dir / "worker.log", ["--roles", "schedule"])
    fs.workers.append(proc)
    runtime.wait_worker_ready(sched_dir, proc, timeout=90)

    health = json.loads(get(sched_port, "/health/"))
    assert (health["roles"], health["store"]) == (["schedule"], "none")
    ingest_health = json.loads(get(fs.web_port, "/health/"))
    assert (ingest_health["roles"], ingest_health["store"]) == (["ingest"], "write")
    assert 'flexstream_worker_role{role="schedule"} 1.0' in get(sched_port, "/metrics").decode()

    now = datetime.now(UTC)
    fs.publish("readings.price", [("da-price", prices(t0 - timedelta(hours=1), 50, now))])
    fs.publish("readings.meter", [("bat-soc", soc(t0 - timedelta(minutes=30), 4.0))])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 51)
    # The scheduling worker's belief state is fed by its own readings consumer.
    wait_for(
        lambda: (
            fs.committed("feed.schedule", "readings.price") == fs.end_offsets("readings.price")
            and fs.committed("feed.schedule", "readings.meter") == fs.end_offsets("readings.meter")
        ),
        what="the scheduling worker's feed to take the readings",
    )

    fs.publish("schedule-requests", [("home", request("split-1", t0, hours=24))])
    [ans] = answers(fs, 1)
    assert (ans["request_id"], ans["status"]) == ("split-1", "optimal"), ans["message"]
    assert ans["soc_sensor"] == "bat-soc" and len(ans["values"]) == 96
    # Answered by the scheduling worker: the ingest worker has no scheduling agent.
    assert metric(sched_port, "flexstream_schedule_requests_answered_total") == 1
    assert metric(fs.web_port, "flexstream_schedule_requests_answered_total") == 0

    # Stored by the ingest worker, from the schedules topic.
    wait_for(
        lambda: (
            fs.sql(
                "SELECT sensor, count() FROM flexstream.beliefs FINAL WHERE source = "
                "'flexstream-scheduler' GROUP BY sensor ORDER BY sensor"
            )
            == [["bat-power", 96], ["bat-soc", 97]]
        ),
        what="the schedule as beliefs in ClickHouse",
    )
    total = fs.sql(
        "SELECT round(sum(event_value), 6) FROM flexstream.beliefs FINAL "
        "WHERE source = 'flexstream-scheduler' AND sensor = 'bat-power'"
    )[0][0]
    assert total == pytest.approx(round(sum(ans["values"]), 6), abs=1e-5)
    assert metric(fs.web_port, 'flexstream_beliefs_stored_total{stream="schedules"}') == 96 + 97
    wait_for(lambda: fs.committed("schedules", "schedules") == fs.end_offsets("schedules"))

    # The scheduling worker opened no ClickHouse store: no engine folder, nothing written.
    assert not (sched_dir / "clickhouse").exists()
    assert json.loads(get(sched_port, "/health/"))["written"] == 0
    assert "flexstream_beliefs_stored_total{" not in get(sched_port, "/metrics").decode()
    assert proc.poll() is None


def test_invalid_roles_exit_2_naming_the_option_and_the_valid_names(fs):
    out = run(["worker", "--roles", "ingest,planner"], fs.env)
    assert out.returncode == 2
    assert "--roles" in out.stderr and "'planner'" in out.stderr
    assert "ingest, schedule, report, forecast" in out.stderr


def test_a_report_worker_without_ingest_or_a_server_is_refused_naming_clickhouse_url(fs):
    out = run(["worker", "--roles", "report"], fs.env)
    assert out.returncode == 2
    assert "CLICKHOUSE_URL" in out.stderr and "add ingest to --roles" in out.stderr


def test_a_report_only_worker_reads_the_history_through_a_server_and_publishes_its_results(fs):
    """A report worker without ingest: inputs read over ClickHouse's HTTP protocol, results stored
    by the ingest worker.

    The ingest worker's read-only ClickHouse interface stands in for a ClickHouse
    server here (the report worker reaches it through ``CLICKHOUSE_URL`` like any server).
    """
    from streams.sql.auth import TOKEN_FILE
    from tests.integration.test_reports import SRC, T0, batch, net_report, report_rows

    net_report(fs)
    fs.extra_env["FLEXSTREAM_WORKER_ROLES"] = "ingest"
    fs.start_worker()
    token = (fs.data_dir / TOKEN_FILE).read_text().strip()
    report_dir, report_port = fs.data_dir.parent / "reporter", kafka_local.free_port()
    env = {
        **fs.env,
        "FLEXSTREAM_DATA_DIR": str(report_dir),
        "FLEXSTREAM_WORKER_WEB_PORT": str(report_port),
        "FLEXSTREAM_WORKER_ROLES": "report",
        "CLICKHOUSE_URL": f"http://reader:{token}@127.0.0.1:{fs.clickhouse_port}",
    }
    proc = runtime.spawn_worker(env, report_dir / "worker.log")
    fs.workers.append(proc)
    runtime.wait_worker_ready(report_dir, proc, timeout=90)
    health = json.loads(get(report_port, "/health/"))
    assert (health["roles"], health["store"]) == (["report"], "read")

    fs.publish(
        "readings.meter",
        [
            ("pv", batch("pv", T0, [-2.0] * 6, source="meter")),
            ("load", batch("load", T0, [3.0] * 6, source="meter")),
        ],
    )
    rows = wait_for(lambda: report_rows(fs, "net"), what="the report, stored by the ingest worker")
    assert [(r[0], r[1], r[3]) for r in rows] == [("2026-04-01 00:00:00.000000", 1.0, SRC + "net")]
    # The report worker wrote nothing itself: no engine folder of its own.
    assert not (report_dir / "clickhouse").exists()
    assert "flexstream_beliefs_stored_total{" not in get(report_port, "/metrics").decode()
    assert (
        'flexstream_beliefs_stored_total{stream="reports"} 1.0'
        in get(fs.web_port, "/metrics").decode()
    )
