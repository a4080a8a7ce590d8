"""Streaming and batch reports against the real broker and the embedded engine.

A window closes when every input's watermark passed its end plus the grace
period: its result lands on the reports topic and in ClickHouse. A late belief
recomputes the window as a newer belief, also after the worker was killed
and restarted (the window state comes back); streaming equals batch; a daily
window follows the output sensor's local day across DST; the chart command's
HTML draws in a real browser.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from connectors import registry, report_definitions
from connectors.kafka import ConfirmingProducer
from schemas import serde
from schemas.beliefs import Sensor
from schemas.report_definition import build_definition
from schemas.reporters import load_parameters
from tests.integration.conftest import batch, wait_for
from tests.integration.test_chart_render import _dump_dom, chromium  # noqa: F401
from tests.integration.test_cli import run

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, tzinfo=UTC)
Q = 900_000  # 15 minutes in ms
SRC = "flexstream-reporter:"


def register_sensors(fs, *sensors: Sensor) -> None:
    producer = ConfirmingProducer({"bootstrap.servers": fs.bootstrap})
    registry.publish(producer, fs.topic("registry"), list(sensors))


def register_report(fs, name, reporter, config, parameters, grace="PT15M", timeout="PT1H"):
    defn = build_definition(name, reporter, config, load_parameters(parameters), grace, timeout)
    producer = ConfirmingProducer({"bootstrap.servers": fs.bootstrap})
    report_definitions.publish(producer, fs.topic("report-definitions"), [defn])
    return defn


def report_rows(fs, sensor: str) -> list[list]:
    return fs.sql(
        "SELECT toString(event_start), event_value, toUnixTimestamp64Micro(belief_time), source "
        f"FROM flexstream.beliefs FINAL WHERE sensor = '{sensor}' "
        "ORDER BY event_start, belief_time"
    )


def net_report(fs, grace="PT15M"):
    register_sensors(fs, Sensor(name="net", unit="kWh", event_resolution="PT1H"))
    return register_report(
        fs,
        "net",
        "AggregatorReporter",
        {"method": "sum"},
        {
            "input": [{"name": "pv", "sensor": "pv"}, {"name": "load", "sensor": "load"}],
            "output": [{"name": "net", "sensor": "net"}],
            "window": "PT1H",
        },
        grace=grace,
    )


def test_window_closes_on_watermarks_and_a_late_belief_gives_a_newer_result(fs):
    net_report(fs)
    fs.start_worker()
    # first hour: pv 4 x -2 kW, load 4 x 3 kW; watermarks at 01:00 < 01:00 + grace
    fs.publish(
        "readings.meter",
        [
            ("pv", batch("pv", T0, [-2.0] * 4, source="meter")),
            ("load", batch("load", T0, [3.0] * 4, source="meter")),
        ],
    )
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL") == [[8]], what="input")
    # only pv moves past 01:15: the window waits for load
    fs.publish("readings.meter", [("pv", batch("pv", T0 + timedelta(hours=1), [-2.0] * 2))])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL") == [[10]], what="pv")
    assert report_rows(fs, "net") == []
    fs.publish("readings.meter", [("load", batch("load", T0 + timedelta(hours=1), [3.0] * 2))])
    rows = wait_for(lambda: report_rows(fs, "net"), what="the first report")
    assert [(r[0], r[1], r[3]) for r in rows] == [("2026-04-01 00:00:00.000000", 1.0, SRC + "net")]
    first_bt = rows[0][2]

    msgs = fs.consume_all("reports", 1)
    kind, rec = serde.decode(msgs[0].value())
    assert kind == "BeliefBatch" and msgs[0].key() == b"net"
    assert rec["values"] == [1.0] and rec["source"] == SRC + "net"
    assert rec["start"] == T0 and rec["resolution_ms"] == 3_600_000

    # a late correction of load at 00:15 (believed later): 3 kW -> 7 kW
    late = batch(
        "load",
        T0 + timedelta(minutes=15),
        [7.0],
        source="meter",
        belief_time=T0 + timedelta(hours=3),
    )
    fs.publish("readings.meter", [("load", late)])
    rows = wait_for(lambda: len(report_rows(fs, "net")) == 2 and report_rows(fs, "net"))
    assert [r[1] for r in rows] == [1.0, 2.0]
    assert rows[1][2] > first_bt, "the correction must be a newer belief"
    latest = fs.sql("SELECT event_value FROM flexstream.latest_beliefs WHERE sensor = 'net'")
    assert latest == [[2.0]]
    # the second hour has not closed (no watermark passed 02:15)
    assert all(r[0].startswith("2026-04-01 00:00") for r in rows)
    assert len(fs.consume_all("reports", 2)) == 2


def report_status(fs) -> dict:
    url = f"http://127.0.0.1:{fs.web_port}/reports/"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.loads(resp.read())
    except OSError:
        return {}


def test_killed_worker_keeps_its_windows_a_late_belief_recomputes_an_open_window_closes(fs):
    net_report(fs)
    first = fs.start_worker()
    # two hours of pv and load: hour 0 closes (watermarks 02:00 >= 01:15), hour 1 stays open
    fs.publish(
        "readings.meter",
        [
            ("pv", batch("pv", T0, [-2.0] * 8, source="meter")),
            ("load", batch("load", T0, [3.0] * 4 + [5.0] * 4, source="meter")),
        ],
    )
    rows = wait_for(lambda: report_rows(fs, "net"), what="the first report")
    assert [(r[0], r[1]) for r in rows] == [("2026-04-01 00:00:00.000000", 1.0)]
    first_bt = rows[0][2]
    status = wait_for(lambda: report_status(fs).get("net"), what="the report status")
    assert status["closed"] == 1 and status["pending"] == 1
    # the readings are committed (the input is not replayed after the kill)
    wait_for(
        lambda: fs.committed("readings", "readings.meter") == fs.end_offsets("readings.meter"),
        what="the readings' offsets committed",
    )
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)

    fs.start_worker()
    status = wait_for(
        lambda: (st := report_status(fs).get("net")) and st["watermarks"] and st,
        what="the report status after the restart",
    )
    assert status["pending"] == 1, status
    assert set(status["watermarks"].values()) == {"2026-04-01T02:00:00+00:00"}
    # a late correction of load at 00:15 (believed later): 3 kW -> 7 kW. Its own
    # watermark is before the window's end: only the saved state knows hour 0 closed.
    late = batch(
        "load",
        T0 + timedelta(minutes=15),
        [7.0],
        source="meter",
        belief_time=T0 + timedelta(hours=3),
    )
    fs.publish("readings.meter", [("load", late)])
    rows = wait_for(lambda: len(report_rows(fs, "net")) == 2 and report_rows(fs, "net"))
    hour0 = "2026-04-01 00:00:00.000000"
    assert [(r[0], r[1]) for r in rows] == [(hour0, 1.0), (hour0, 2.0)]
    assert rows[1][2] > first_bt, "the recomputation must be a newer belief"
    # input only for hour 2 passes hour 1's end + grace: hour 1, open before the
    # kill, closes with the input it had then
    fs.publish(
        "readings.meter",
        [
            ("pv", batch("pv", T0 + timedelta(hours=2), [-2.0] * 2, source="meter")),
            ("load", batch("load", T0 + timedelta(hours=2), [5.0] * 2, source="meter")),
        ],
    )
    rows = wait_for(lambda: len(report_rows(fs, "net")) == 3 and report_rows(fs, "net"))
    assert (rows[2][0], rows[2][1]) == ("2026-04-01 01:00:00.000000", 3.0)
    latest = fs.sql(
        "SELECT toString(event_start), event_value FROM flexstream.latest_beliefs "
        "WHERE sensor = 'net' ORDER BY event_start"
    )
    assert latest == [["2026-04-01 00:00:00.000000", 2.0], ["2026-04-01 01:00:00.000000", 3.0]]


def _profile(n: int, phase: float) -> list[float]:
    return [round(((i * 7 + phase) % 11) - 4.0, 3) for i in range(n)]


def test_streaming_equals_batch_for_the_same_data(fs, tmp_path):
    register_sensors(fs, Sensor(name="cost", unit="EUR", event_resolution="PT1H"))
    params = {
        "input": [{"name": "flow", "sensor": "load"}, {"name": "price", "sensor": "price"}],
        "output": [{"name": "cost", "sensor": "cost"}],
        "window": "PT1H",
    }
    config = {"consumption_price": "price", "production_price": "price"}
    register_report(fs, "cost", "ProfitOrLossReporter", config, params, grace="PT0M")
    fs.start_worker()
    hours = 12
    fs.publish(
        "readings.price",
        [("price", batch("price", T0, [50.0 + 3 * h for h in range(hours)], 3_600_000))],
    )
    # load in three messages, the middle one out of order
    load = _profile(4 * hours, 0.5)
    parts = [(0, 16), (32, 48), (16, 32)]
    fs.publish(
        "readings.meter",
        [
            ("load", batch("load", T0 + timedelta(minutes=15 * a), load[a:b], source="meter"))
            for a, b in parts
        ],
    )

    def streamed_now() -> dict:
        return {r[0]: r[1] for r in report_rows(fs, "cost")}  # the latest belief per event

    wait_for(lambda: len(streamed_now()) == hours, timeout=60, what="the streaming report")
    streamed = streamed_now()

    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump({"reporter": "ProfitOrLossReporter", **config})
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = run(
        [
            "add", "report",
            "--config", str(tmp_path / "config.yaml"),
            "--parameters", str(tmp_path / "params.yaml"),
            "--name", "cost",
            "--start", "2026-04-01T00:00Z",
            "--end", "2026-04-01T12:00Z",
            "--dry-run",
            "--output-file", str(tmp_path / "cost.csv"),
        ],
        fs.env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "dry run: 12 values computed" in out.stdout
    with open(tmp_path / "cost.csv", newline="") as f:
        batch_rows = list(csv.DictReader(f))
    batched = {
        datetime.fromisoformat(r["event_start"]).strftime("%Y-%m-%d %H:%M:%S.000000"): float(
            r["event_value"]
        )
        for r in batch_rows
    }
    assert batched == pytest.approx(streamed, rel=1e-12)
    assert {r["source"] for r in batch_rows} == {SRC + "cost"}
    # hand check of hour 0: sum(load kW * 0.25 h) * price EUR/MWh / 1000
    assert streamed["2026-04-01 00:00:00.000000"] == pytest.approx(sum(load[:4]) * 0.25 * 50 / 1000)


def test_batch_run_publishes_to_the_reports_topic_and_the_worker_stores_it(fs, tmp_path):
    register_sensors(fs, Sensor(name="net", unit="kWh", event_resolution="PT1H"))
    fs.start_worker()
    fs.publish(
        "readings.meter",
        [
            ("pv", batch("pv", T0, [-1.0] * 8, source="meter")),
            ("load", batch("load", T0, [2.0] * 8, source="meter")),
        ],
    )
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL") == [[16]])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.sensors FINAL WHERE name='net'"))
    (tmp_path / "config.json").write_text(json.dumps({"method": "sum"}))
    (tmp_path / "params.json").write_text(
        json.dumps(
            {
                "input": [{"name": "pv", "sensor": "pv"}, {"name": "load", "sensor": "load"}],
                "output": [{"name": "net", "sensor": "net"}],
                "window": "PT1H",
            }
        )
    )
    args = ["add", "report", "--reporter", "AggregatorReporter",
            "--config", str(tmp_path / "config.json"),
            "--parameters", str(tmp_path / "params.json")]  # fmt: skip
    out = run([*args, "--start", "2026-04-01T00:00Z", "--end", "2026-04-01T02:00Z"], fs.env)
    assert out.returncode == 0, out.stderr
    assert "published 2 values" in out.stdout
    rows = wait_for(lambda: len(report_rows(fs, "net")) == 2 and report_rows(fs, "net"))
    assert [r[1] for r in rows] == [1.0, 1.0] and {r[3] for r in rows} == {SRC + "net"}

    bad = run([*args, "--start", "2026-04-01T00:30Z", "--end", "2026-04-01T02:00Z"], fs.env)
    assert bad.returncode == 2 and "--start" in bad.stderr

    shown = run(["show", "reporters", "--format", "json"], fs.env)
    names = [r["name"] for r in json.loads(shown.stdout)]
    assert names == ["AggregatorReporter", "PandasReporter", "ProfitOrLossReporter"]

    reg = run([*args, "--name", "net-stream", "--grace", "PT0M"], fs.env)
    assert reg.returncode == 0, reg.stderr
    listed = json.loads(run(["show", "reports", "--format", "json"], fs.env).stdout)
    assert [(d["name"], d["grace"]) for d in listed] == [("net-stream", "PT0S")]


def test_daily_window_is_the_output_sensors_local_day_across_dst(fs):
    # 2026-03-29 in Amsterdam lasts 23 hours: 2026-03-28T23:00Z .. 2026-03-29T22:00Z
    register_report(
        fs,
        "pv-daily",
        "AggregatorReporter",
        {"weights": {"pv": -1}},
        {
            "input": [{"name": "pv", "sensor": "pv"}],
            "output": [{"name": "daily", "sensor": "daily"}],
            "window": "P1D",
        },
        grace="PT0M",
    )
    fs.start_worker()
    start = datetime(2026, 3, 28, 23, tzinfo=UTC)
    n = (23 + 2) * 4  # the 23-hour day and 2 hours of the next
    fs.publish("readings.meter", [("pv", batch("pv", start, [-1.0] * n, source="meter"))])
    rows = wait_for(lambda: report_rows(fs, "daily"), what="the daily report")
    assert [(r[0], r[1]) for r in rows] == [("2026-03-28 23:00:00.000000", 23.0)]


def test_chart_command_draws_beliefs_and_reports_in_a_browser(fs, tmp_path, chromium):  # noqa: F811
    net_report(fs, grace="PT0M")
    fs.start_worker()
    fs.publish(
        "readings.meter",
        [
            ("pv", batch("pv", T0, [-1.0, -2.0, -3.0, -2.0] * 2, source="meter")),
            ("load", batch("load", T0, [2.0] * 8, source="meter")),
        ],
    )
    wait_for(lambda: len(report_rows(fs, "net")) == 2, what="two hourly reports")
    html = tmp_path / "chart.html"
    out = run(
        ["chart", "--sensor", "pv", "--sensor", "load", "--sensor", "net",
         "--start", "2026-04-01T00:00Z", "--end", "2026-04-01T02:00Z", "--output", str(html)],
        fs.env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    dom = _dump_dom(chromium, html, tmp_path / "profile")
    lines = re.findall(r'<path[^>]*aria-roledescription="line mark"[^>]*>', dom)
    labels = sorted(re.search(r"sensor: ([^;]+);", p).group(1) for p in lines)
    assert labels == ["load", "net", "pv"]
    assert "kind: report" in dom and f"source: {SRC}net" in dom
    assert ">kWh</text>" in dom and ">kW</text>" in dom
    missing = run(
        ["chart", "--sensor", "nope", "--start", "2026-04-01T00:00Z", "--end", "2026-04-02T00:00Z"],
        fs.env,
    )
    assert missing.returncode == 2 and "no beliefs" in missing.stderr


def test_demo_kpis_are_registered_computed_stored_and_printed_with_a_chart(fs):
    from streams.demo.data import SENSORS as DEMO_SENSORS
    from streams.demo.data import make_site
    from streams.demo.reports import demo_reports
    from streams.demo.run import _records

    register_sensors(fs, *DEMO_SENSORS)
    fs.start_worker()
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.sensors FINAL") == [[5 + 6]])
    start, days = datetime(2026, 10, 23, tzinfo=UTC), 4  # spans the end of DST on 10-25
    series = make_site(start, days)
    fs.publish(
        "readings.meter",
        [(key, serde.encode("BeliefBatch", rec)) for _, key, rec in _records(series)],
    )
    expected = sum(len(s.values) for s in series)
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL") == [[expected]])
    printed: list[str] = []
    kpis = demo_reports(fs.settings(), printed.append, start, start + timedelta(days=days))
    assert sorted(kpis) == ["2026-10-24", "2026-10-25", "2026-10-26"]  # whole local days
    for values in kpis.values():
        assert set(values) == {
            "energy-consumed", "energy-produced", "cost", "self-consumption",
            "self-consumed", "pv-produced",
        }  # fmt: skip
        assert 0 <= values["self-consumption"] <= 100
        assert values["self-consumed"] <= values["pv-produced"] + 1e-9
    assert (fs.data_dir / "demo" / "chart.html").stat().st_size > 100_000
    assert any("registered 3 KPI reports" in p for p in printed)
