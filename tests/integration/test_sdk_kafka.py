"""The client SDK against the real broker: readings through a worker, schedules we produce."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer, TopicPartition

from connectors.sdk import AsyncFlexStreamClient, FlexStreamClient, Schedule, ScheduleTimeout
from schemas import serde
from tests.integration.conftest import wait_for
from tests.integration.test_cli import run

pytestmark = pytest.mark.integration

T0 = datetime(2026, 4, 1, tzinfo=UTC)
Q = timedelta(minutes=15)


def schedule(sensor: str, request_id: str, values=(1.0, 2.0), **kw) -> Schedule:
    fields = {
        "request_id": request_id,
        "asset": "site",
        "sensor": sensor,
        "status": "optimal",
        "start": T0,
        "resolution": Q,
        "belief_time": datetime.now(UTC),
        "values": list(values),
        "state_of_charge": [5.0 + sum(values[:i]) / 4 for i in range(len(values) + 1)],
        "costs_total": 1.5,
        "currency": "EUR",
    }
    fields.update(kw)
    return Schedule(**fields)


def answer(fs, *schedules: Schedule) -> None:
    fs.publish(
        "schedules",
        [(s.sensor, serde.encode("Schedule", s.to_record())) for s in schedules],
    )


def client(fs, **kw) -> FlexStreamClient:
    """A client of the test's topics that checks against its worker's sensors file."""
    return FlexStreamClient(fs.bootstrap, settings=fs.settings(), **kw)


def test_readings_published_with_both_clients_land_through_the_worker(fs):
    fs.start_worker()
    with client(fs, max_values=4) as c:
        r = c.publish_readings("load", T0, Q, [float(i) for i in range(10)], source="meter")
        assert (r.beliefs, r.messages, r.confirmed) == (10, 3, True)
        one = c.publish_reading("soc", T0, 4.5, resolution=timedelta(0), source="bms")
        assert one.beliefs == 1
        # NaN goes out; the worker dead-letters it alone.
        c.publish_readings("load", T0 + 10 * Q, Q, [1.0, float("nan")], source="meter", wait=False)
        assert c.flush() == 2

    async def publish_async() -> int:
        async with AsyncFlexStreamClient(fs.bootstrap, settings=fs.settings()) as ac:
            receipt = await ac.publish_readings(
                "price", T0, timedelta(hours=1), [50.0, 60.0], source="epex", topic="price"
            )
            return receipt.beliefs

    assert asyncio.run(publish_async()) == 2
    assert fs.end_offsets("readings.meter") == 5  # 3 messages of the split series, 1 + 1
    wait_for(
        lambda: (
            fs.sql(
                "SELECT sensor, count(), sum(event_value) FROM flexstream.beliefs FINAL "
                "GROUP BY sensor ORDER BY sensor"
            )
            == [["load", 11, 46.0], ["price", 2, 110.0], ["soc", 1, 4.5]]
        ),
        what="beliefs from the SDK",
    )
    dead = fs.consume_all("dead-letters", 1)
    assert len(dead) == 1 and b"load" in dead[0].value()


def test_subscribe_schedules_yields_new_schedules_of_the_chosen_sensors(fs):
    answer(fs, schedule("battery", "old"))
    with client(fs) as c:
        with c.subscribe_schedules(["battery"], timeout=3) as sub:
            answer(fs, schedule("ev", "r1"), schedule("battery", "r1", values=(3.0, 4.0)))
            got = list(sub)
        assert [(s.sensor, s.request_id, s.values) for s in got] == [("battery", "r1", [3.0, 4.0])]
        assert got[0].ok and got[0].timestamps == [T0, T0 + Q] and got[0].start.tzinfo
        everything = list(c.subscribe_schedules(from_beginning=True, timeout=2))
        assert sorted((s.request_id, s.sensor) for s in everything) == [
            ("old", "battery"),
            ("r1", "battery"),
            ("r1", "ev"),
        ]
        assert c.latest_schedule("battery").request_id == "r1"
        assert c.latest_schedule("nowhere") is None


def requests_sent(fs, expect: int) -> list[dict]:
    return [serde.decode(m.value())[1] for m in fs.consume_all("schedule-requests", expect)]


def test_get_schedule_waits_for_every_device_and_collapses_duplicates(fs):
    with client(fs) as c:
        rid = c.trigger_schedule(
            "site", T0, timedelta(hours=1), devices=["battery", "ev"], flex_model={"a": 1}
        )
        (req,) = requests_sent(fs, 1)
        assert req["request_id"] == rid and req["devices"] == ["battery", "ev"]
        assert req["start"] == T0 and req["duration_ms"] == 3_600_000
        assert json.loads(req["flex_model"]) == {"a": 1}
        # Answers come before get_schedule is called; a duplicate replaces the first answer.
        answer(fs, schedule("battery", rid, values=(1.0,)), schedule("other", "unrelated"))
        answer(fs, schedule("battery", rid, values=(9.0,)))
        threading.Timer(1.0, answer, (fs, schedule("ev", rid))).start()
        got = c.get_schedule(rid, timeout=20)
        assert [(s.sensor, s.values) for s in got] == [("battery", [9.0]), ("ev", [1.0, 2.0])]

        # A whole-asset request: the answers that came, once they stop coming.
        rid2 = c.trigger_schedule("site", T0, timedelta(hours=1), request_id="whole-site")
        assert rid2 == "whole-site"
        answer(fs, schedule("battery", rid2), schedule("ev", rid2, status="infeasible", values=()))
        got = c.get_schedule(rid2, timeout=20)
        assert [(s.sensor, s.ok) for s in got] == [("battery", True), ("ev", False)]


def test_a_request_without_answers_times_out_clearly(fs):
    with client(fs) as c:
        t = time.monotonic()
        with pytest.raises(ScheduleTimeout, match="no schedule came within 1 s") as err:
            c.trigger_and_get_schedule("site", T0, timedelta(hours=1), timeout=1.0)
        assert 1.0 <= time.monotonic() - t < 8 and err.value.partial == []
        rid = c.trigger_schedule("site", T0, timedelta(hours=1), devices=["battery", "ev"])
        answer(fs, schedule("battery", rid))
        with pytest.raises(ScheduleTimeout, match="no answer for ev") as err:
            c.get_schedule(rid, timeout=2.0)
        assert [s.sensor for s in err.value.partial] == ["battery"]
        assert isinstance(err.value, Exception) and err.value.request_id == rid


def test_the_answers_of_an_earlier_request_are_found_from_the_start_of_the_topic(fs):
    answer(fs, schedule("battery", "earlier"), schedule("battery", "earlier", values=(7.0,)))
    with client(fs) as c:
        got = c.get_schedule("earlier", timeout=10, expect_devices=["battery"])
        assert [s.values for s in got] == [[7.0]]


def test_the_async_subscription_receives_and_is_cancellable(fs):
    async def main() -> None:
        async with AsyncFlexStreamClient(fs.bootstrap, topic_prefix=fs.prefix) as ac:
            async with ac.subscribe_schedules(["battery"]) as stream:
                await asyncio.to_thread(answer, fs, schedule("battery", "a1"))
                first = await asyncio.wait_for(anext(stream), 20)
                assert first.request_id == "a1"
                reading = asyncio.Event()

                async def read():
                    reading.set()  # runs on into the wait for the next schedule
                    return await anext(stream)

                task = asyncio.ensure_future(read())
                await reading.wait()  # the reader is waiting: cancel it there
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                await asyncio.to_thread(wait_for, lambda: stream.closed, 5)
            rid = await ac.trigger_schedule("site", T0, timedelta(hours=1), devices=["ev"])
            await asyncio.to_thread(answer, fs, schedule("ev", rid))
            (got,) = await ac.get_schedule(rid, timeout=20)
            assert got.sensor == "ev"

    asyncio.run(main())


class Responder(threading.Thread):
    """Answers every schedule request like the agent would (one optimal schedule per device)."""

    def __init__(self, fs, status: str = "optimal") -> None:
        super().__init__(daemon=True)
        self.fs, self.status, self.stop = fs, status, threading.Event()

    def run(self) -> None:
        c = Consumer({"bootstrap.servers": self.fs.bootstrap, "group.id": "responder"})
        c.assign([TopicPartition(self.fs.topic("schedule-requests"), 0, 0)])
        while not self.stop.is_set():
            m = c.poll(0.2)
            if m is None or m.error():
                continue
            req = serde.decode(m.value())[1]
            values = () if self.status == "infeasible" else (1.0, -1.0)
            answer(
                self.fs,
                *(
                    schedule(d, req["request_id"], values=values, status=self.status)
                    for d in req["devices"] or ["battery"]
                ),
            )
        c.close()


@pytest.mark.parametrize(("status", "code"), [("optimal", 0), ("infeasible", 2)])
def test_the_cli_requests_a_schedule_waits_and_shows_it(fs, status, code):
    responder = Responder(fs, status)
    responder.start()
    try:
        out = run(
            ["add", "schedule", "--asset", "site", "--start", "2026-04-01T00:00Z"]
            + ["--duration", "PT30M", "--device", "battery", "--wait", "--timeout", "20"],
            fs.env,
        )
    finally:
        responder.stop.set()
    assert out.returncode == code, out.stderr
    assert f"battery: status {status}" in out.stdout
    if status == "optimal":
        assert "total cost 1.50 EUR, 0 breaches" in out.stdout and "-1.000" in out.stdout
    shown = run(["show", "schedules", "--sensor", "battery", "--format", "json"], fs.env)
    assert shown.returncode == 0, shown.stderr
    (s,) = json.loads(shown.stdout)
    assert s["status"] == status and s["start"] == "2026-04-01T00:00:00+00:00"
    missing = run(["show", "schedules", "--sensor", "nowhere"], fs.env)
    assert missing.returncode == 1 and "nowhere" in missing.stderr


def test_the_cli_exits_3_when_no_schedule_comes(fs):
    out = run(
        ["add", "schedule", "--asset", "site", "--start", "now", "--duration", "PT1H"]
        + ["--wait", "--timeout", "1", "--format", "json"],
        fs.env,
    )
    assert out.returncode == 3 and "no schedule came within 1 s" in out.stderr
    out = run(["add", "schedule", "--asset", "site", "--start", "x", "--duration", "PT1H"], fs.env)
    assert out.returncode == 2 and "--start" in out.stderr


def test_trigger_and_get_schedule_end_to_end_through_the_scheduling_agent(fs, tmp_path):
    from streams.scheduling.agent import floor_time
    from tests.integration.test_scheduling import register

    register(fs, tmp_path)  # sensors bat-power, bat-soc, da-price; asset "home"
    fs.start_worker()
    now = datetime.now(UTC)
    t0 = floor_time(now, timedelta(hours=1))
    with client(fs) as c:
        hourly = [
            50.0 + 40 * (h % 24 in (17, 18, 19)) - 30 * (h % 24 in (2, 3, 4)) for h in range(30)
        ]
        c.publish_readings(
            "da-price",
            t0 - timedelta(hours=1),
            timedelta(hours=1),
            hourly,
            source="epex",
            belief_time=now,
            topic="price",
        )
        c.publish_reading(
            "bat-soc", t0 - timedelta(minutes=30), 4.0, resolution=timedelta(0), source="bms"
        )
        wait_for(lambda: fs.sql("SELECT count() FROM flexstream.beliefs FINAL")[0][0] == 31)
        (s,) = c.trigger_and_get_schedule("home", t0, timedelta(hours=24), timeout=60)
        assert (s.sensor, s.status, s.asset) == ("bat-power", "optimal", "home"), s.message
        assert s.ok and len(s.values) == 96 and len(s.state_of_charge) == 97
        assert s.timestamps[0] == t0 and s.state_of_charge[0] == pytest.approx(4.0)
        assert s.currency == "EUR" and s.costs_total is not None
        (bad,) = c.trigger_and_get_schedule(
            "home", t0, timedelta(hours=1), devices=["nowhere"], timeout=60
        )
        assert bad.status == "invalid" and not bad.ok and "nowhere" in bad.message


def test_show_schedules_follow_prints_the_latest_first_then_follows(fs):
    answer(fs, schedule("battery", "old"), schedule("battery", "current"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams.cli",
            "show",
            "schedules",
            "--sensor",
            "battery",
            "--follow",
            "--format",
            "json",
        ],
        env=fs.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=60))
        assert first["request_id"] == "current"
        answer(fs, schedule("ev", "r2"), schedule("battery", "next"))
        second = json.loads(lines.get(timeout=60))
        assert second["request_id"] == "next"
    finally:
        proc.terminate()
        proc.wait(15)
