"""Schedule requests -> schedules, against the real broker, a worker and the embedded engine."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from confluent_kafka import Producer

from schemas import serde
from streams.scheduling.agent import floor_time
from tests.integration.conftest import batch, wait_for
from tests.integration.test_cli import run

pytestmark = pytest.mark.integration

SENSORS = [
    {"name": "bat-power", "unit": "kW", "event_resolution": "PT15M"},
    {"name": "bat-soc", "unit": "kWh", "event_resolution": "PT0M"},
    {"name": "da-price", "unit": "EUR/MWh", "event_resolution": "PT1H"},
]


def asset(replan: dict | None = None) -> dict:
    out = {
        "name": "home",
        "flex-context": {"consumption-price": {"sensor": "da-price"}},
        "flex-model": {
            "sensor": "bat-power",
            "soc-at-start": {"sensor": "bat-soc"},
            "soc-min": "1 kWh",
            "soc-max": "10 kWh",
            "power-capacity": "5 kW",
            "roundtrip-efficiency": "90%",
        },
    }
    if replan:
        out["replan"] = replan
    return out


def marker_asset(replan: dict) -> dict:
    """A second re-planning asset whose price sensor serves as a marker (see the burst test)."""
    out = asset(replan)
    out["name"] = "marker"
    out["flex-context"] = {"consumption-price": {"sensor": "marker-price"}}
    out["flex-model"] = dict(out["flex-model"], sensor="marker-power")
    return out


def register(fs, tmp_path, replan: dict | None = None, *extra_assets: dict) -> None:
    sensors = SENSORS + [
        {"name": "marker-price", "unit": "EUR/MWh", "event_resolution": "PT1H"},
        {"name": "marker-power", "unit": "kW", "event_resolution": "PT15M"},
    ] * bool(extra_assets)
    register_all(fs, tmp_path, sensors, [asset(replan), *extra_assets])


def register_all(fs, tmp_path, sensors: list[dict], assets: list[dict]) -> None:
    """Register ``sensors`` and then ``assets`` through the CLI."""
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sensors))
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(assets))
    for kind, f in (("sensor", "s.yaml"), ("asset", "a.yaml")):
        out = run(["add", kind, str(tmp_path / f)], fs.env)
        assert out.returncode == 0, out.stderr


def prices(
    start: datetime, hours: int, now: datetime, level: float = 50.0, sensor: str = "da-price"
) -> bytes:
    values = [
        level + 40 * ((h % 24) in (17, 18, 19)) - 30 * ((h % 24) in (2, 3, 4)) for h in range(hours)
    ]
    return batch(sensor, start, values, res_ms=3_600_000, belief_time=now, source="epex")


def soc(at: datetime, value: float) -> bytes:
    return serde.encode(
        "Belief", {"sensor": "bat-soc", "event_start": at, "event_value": value, "source": "bms"}
    )


def request(rid: str, start: datetime, hours: int = 48, **kw) -> bytes:
    rec = {
        "request_id": rid,
        "asset": "home",
        "start": start,
        "duration_ms": hours * 3_600_000,
        "resolution_ms": 900_000,
        "requested_at": datetime.now(UTC),
    }
    rec.update(kw)
    return serde.encode("ScheduleRequest", rec)


def answers(fs, n: int, timeout: float = 60) -> list[dict]:
    return [serde.decode(m.value())[1] for m in fs.consume_all("schedules", n, timeout)]


@pytest.fixture
def t0() -> datetime:
    return floor_time(datetime.now(UTC), timedelta(hours=1))


def test_request_to_schedule_round_trip(fs, tmp_path, t0):
    register(fs, tmp_path)
    fs.start_worker()
    now = datetime.now(UTC)
    fs.publish("readings.price", [("da-price", prices(t0 - timedelta(hours=1), 50, now))])
    fs.publish("readings.meter", [("bat-soc", soc(t0 - timedelta(minutes=30), 4.0))])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 51)
    fs.publish("schedule-requests", [("home", request("r1", t0))])
    [ans] = answers(fs, 1)
    assert (ans["request_id"], ans["sensor"], ans["status"]) == ("r1", "bat-power", "optimal"), ans[
        "message"
    ]
    assert len(ans["values"]) == 192 and len(ans["state_of_charge"]) == 193
    assert ans["state_of_charge"][0] == pytest.approx(4.0)
    assert all(-5 - 1e-6 <= v <= 5 + 1e-6 for v in ans["values"])
    assert all(1 - 1e-6 <= s <= 10 + 1e-6 for s in ans["state_of_charge"])
    assert ans["currency"] == "EUR" and ans["costs_total"] is not None
    # Cheap night hours charge, the evening peak discharges.
    night = ans["values"][(2 - t0.hour) % 24 * 4]
    assert ans["solver_time_ms"] > 0
    assert isinstance(night, float)
    rows = wait_for(
        lambda: (
            fs.sql(
                "SELECT sensor, count() FROM flexstream.beliefs FINAL WHERE source = "
                "'flexstream-scheduler' GROUP BY sensor ORDER BY sensor"
            )
            == [["bat-power", 192], ["bat-soc", 193]]
        ),
        what="the schedule as beliefs",
    )
    assert rows
    total = fs.sql(
        "SELECT round(sum(event_value), 6) FROM flexstream.beliefs FINAL "
        "WHERE source = 'flexstream-scheduler' AND sensor = 'bat-power'"
    )[0][0]
    assert total == pytest.approx(round(sum(ans["values"]), 6), abs=1e-5)


def test_output_sensors_named_in_the_request_get_their_parts_of_the_schedule(fs, tmp_path, t0):
    """consumption/production split the battery's power; aggregate-power adds the base load."""
    outputs = [
        {"name": n, "unit": "kW", "event_resolution": "PT15M"} for n in ("bat-in", "bat-out", "net")
    ]
    home = asset()
    home["flex-model"].update(consumption={"sensor": "bat-in"}, production={"sensor": "bat-out"})
    home["flex-context"].update(
        {"inflexible-consumption": "2 kW", "aggregate-power": {"sensor": "net"}}
    )
    register_all(fs, tmp_path, SENSORS + outputs, [home])
    fs.start_worker()
    now = datetime.now(UTC)
    fs.publish("readings.price", [("da-price", prices(t0 - timedelta(hours=1), 50, now))])
    fs.publish("readings.meter", [("bat-soc", soc(t0 - timedelta(minutes=30), 4.0))])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 51)
    fs.publish("schedule-requests", [("home", request("out-1", t0, hours=24))])
    got = {a["sensor"]: a for a in answers(fs, 4)}
    assert set(got) == {"bat-power", "bat-in", "bat-out", "net"}
    assert {a["request_id"] for a in got.values()} == {"out-1"}
    assert {a["status"] for a in got.values()} == {"optimal"}
    p = got["bat-power"]["values"]
    assert got["bat-in"]["values"] == [max(v, 0.0) for v in p]
    assert got["bat-out"]["values"] == [min(v, 0.0) for v in p]
    assert got["net"]["values"] == pytest.approx([v + 2.0 for v in p])
    assert any(v > 0 for v in p) and any(v < 0 for v in p)
    wait_for(
        lambda: (
            fs.sql(
                "SELECT sensor, count() FROM flexstream.beliefs FINAL WHERE source = "
                "'flexstream-scheduler' GROUP BY sensor ORDER BY sensor"
            )
            == [["bat-in", 96], ["bat-out", 96], ["bat-power", 96], ["bat-soc", 97], ["net", 96]]
        ),
        what="the output sensors' schedules as beliefs",
    )


def test_a_portfolio_asset_schedules_its_sites_toward_its_market(fs, tmp_path, t0):
    """A VPP asset's two sites answered in one request, their schedules stored."""
    second = {"name": "bat2-power", "unit": "kW", "event_resolution": "PT15M"}
    home = asset()
    home.update(parent="vpp", **{"flex-context": {}})
    depot = asset()
    depot.update(name="depot", parent="vpp", **{"flex-context": {"site-power-capacity": "3 kW"}})
    depot["flex-model"] = dict(depot["flex-model"], sensor="bat2-power")
    vpp = {"name": "vpp", "flex-context": {"consumption-price": {"sensor": "da-price"}}}
    register_all(fs, tmp_path, [*SENSORS, second], [vpp, home, depot])
    fs.start_worker()
    now = datetime.now(UTC)
    fs.publish("readings.price", [("da-price", prices(t0 - timedelta(hours=1), 50, now))])
    fs.publish("readings.meter", [("bat-soc", soc(t0 - timedelta(minutes=30), 4.0))])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 51)
    fs.publish("schedule-requests", [("vpp", request("vpp-1", t0, hours=24, asset="vpp"))])
    got = {a["sensor"]: a for a in answers(fs, 2)}
    assert set(got) == {"bat-power", "bat2-power"}
    for a in got.values():
        assert (a["request_id"], a["asset"], a["status"]) == ("vpp-1", "vpp", "optimal"), a[
            "message"
        ]
        assert sorted(a["answered_devices"]) == ["bat-power", "bat2-power"]
    # The depot's 3 kW connection limits its battery; the home's 5 kW battery uses it all.
    assert max(abs(v) for v in got["bat2-power"]["values"]) <= 3 + 1e-6
    assert max(abs(v) for v in got["bat-power"]["values"]) > 3
    wait_for(
        lambda: (
            fs.sql(
                "SELECT sensor, count() FROM flexstream.beliefs FINAL WHERE source = "
                "'flexstream-scheduler' GROUP BY sensor ORDER BY sensor"
            )
            == [["bat-power", 96], ["bat-soc", 97], ["bat2-power", 96]]
        ),
        what="both sites' schedules as beliefs",
    )


def test_requests_with_missing_or_bad_inputs_are_answered_with_what_is_missing(fs, tmp_path, t0):
    register(fs, tmp_path)
    fs.start_worker()
    now = datetime.now(UTC)
    fs.publish("readings.price", [("da-price", prices(t0, 24, now))])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 24)
    fs.publish("schedule-requests", [("home", request("no-soc", t0, hours=12))])
    [no_soc] = answers(fs, 1)
    fs.publish("readings.meter", [("bat-soc", soc(t0 - timedelta(minutes=15), 3.0))])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 25)
    fs.publish(
        "schedule-requests",
        [
            ("home", request("too-long", t0, hours=36)),
            ("home", request("ghost", t0, asset="nowhere")),
            ("home", request("bad-json", t0, flex_model='{"soc-max": 4 kWh}')),
            ("home", request("", t0)),
            ("home", b"\x00\x00\x00\x00\x06 garbage"),
        ],
    )
    got = {a["request_id"]: a for a in answers(fs, 5)}
    assert got["no-soc"] == no_soc
    assert got["no-soc"]["status"] == "error"
    assert "bat-soc" in got["no-soc"]["message"] and "soc-at-start" in got["no-soc"]["message"]
    assert got["too-long"]["status"] == "error"
    assert "'da-price'" in got["too-long"]["message"]
    assert "48 of 144 steps" in got["too-long"]["message"]
    assert got["ghost"]["status"] == "invalid" and "not registered" in got["ghost"]["message"]
    assert got["bad-json"]["status"] == "invalid"
    assert got["bad-json"]["message"].startswith("flex_model: is not valid JSON")
    assert got[""]["status"] == "invalid" and got[""]["message"].startswith("request_id:")
    [dead] = [serde.decode(m.value())[1] for m in fs.consume_all("dead-letters", 1)]
    assert dead["error"] == "bad-request" and dead["topic"] == fs.topic("schedule-requests")


def requested_replans(fs) -> dict[str, int]:
    """Re-plan requests on the requests topic so far, counted per asset."""
    out: dict[str, int] = {}
    for m in fs.consume_all("schedule-requests", fs.end_offsets("schedule-requests")):
        rec = serde.decode(m.value())[1]
        if rec.get("origin") == "replan":
            out[rec["asset"]] = out.get(rec["asset"], 0) + 1
    return out


def test_a_burst_of_new_prices_gives_one_replan(fs, tmp_path, t0):
    replan = {"on-new-prices": True, "duration": "PT6H", "debounce": "PT1S"}
    register(fs, tmp_path, replan, marker_asset(replan))
    fs.start_worker()
    fs.publish("readings.meter", [("bat-soc", soc(t0 - timedelta(minutes=15), 5.0))])
    now = datetime.now(UTC)
    burst = [("da-price", prices(t0, 8, now, level=50.0 + i)) for i in range(5)]
    fs.publish("readings.price", burst)
    [ans] = answers(fs, 1, timeout=30)
    assert ans["origin"] == "replan" and ans["status"] == "optimal"
    assert ans["request_id"].startswith("replan-home-")

    # Marker: a price for the marker asset, in the burst's partition so it is read
    # after it. Its re-plan has the same debounce, so a second re-plan of home that
    # the burst caused is requested no later than the marker's.
    partition = fs.consume_all("readings.price", 1)[0].partition()

    def publish_marker(*messages: tuple[str, bytes]) -> None:
        producer = Producer({"bootstrap.servers": fs.bootstrap})
        for key, value in messages:
            producer.produce(fs.topic("readings.price"), value, key, partition=partition)
        assert producer.flush(10) == 0

    def marker_replanned(times: int) -> None:
        wait_for(
            lambda: (
                sum(a["sensor"] == "marker-power" for a in answers(fs, fs.end_offsets("schedules")))
                == times
            ),
            what=f"re-plan {times} of the marker asset",
        )

    publish_marker(("marker-price", prices(t0, 2, datetime.now(UTC), sensor="marker-price")))
    marker_replanned(1)
    assert requested_replans(fs) == {"home": 1, "marker": 1}, "a burst must give one re-plan"

    # Prices outside the horizon do not re-plan; the marker follows them again.
    far = t0 + timedelta(days=3)
    publish_marker(
        ("da-price", prices(far, 2, datetime.now(UTC))),
        ("marker-price", prices(t0, 2, datetime.now(UTC), level=60.0, sensor="marker-price")),
    )
    marker_replanned(2)
    assert requested_replans(fs) == {"home": 1, "marker": 2}


def test_killed_worker_recovers_state_and_answers_every_request(fs, tmp_path, t0):
    register(fs, tmp_path)
    first = fs.start_worker()
    now = datetime.now(UTC)
    fs.publish("readings.price", [("da-price", prices(t0, 30, now))])
    fs.publish("readings.meter", [("bat-soc", soc(t0, 6.0))])
    wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 31)
    fs.publish("schedule-requests", [("home", request(f"k{i}", t0, hours=24)) for i in range(6)])
    wait_for(lambda: len(answers(fs, 1, timeout=1)) >= 1, what="a first answer")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    fs.start_worker()
    fs.publish(
        "schedule-requests", [("home", request(f"k{i}", t0, hours=24)) for i in range(6, 10)]
    )
    got = wait_for(
        lambda: (
            (a := answers(fs, 100, timeout=4)) and len({x["request_id"] for x in a}) == 10 and a
        ),
        timeout=90,
        what="answers to all 10 requests",
    )
    assert {x["request_id"] for x in got} == {f"k{i}" for i in range(10)}
    # The belief state came back from its changelog: later requests found prices and SOC.
    assert all(x["status"] == "optimal" for x in got), [x["message"] for x in got]
    assert all(x["state_of_charge"][0] == pytest.approx(6.0) for x in got)
