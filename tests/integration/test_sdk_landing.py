"""The SDK's pre-checks, default belief time and wait_landed against the real broker and worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from connectors.kafka import ConfirmingProducer
from connectors.registry import publish as register
from connectors.sdk import AsyncFlexStreamClient, FlexStreamClient, NotLanded
from schemas.beliefs import Sensor
from schemas.errors import InputError
from schemas.times import from_engine_time

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 1, tzinfo=UTC)
Q = timedelta(minutes=15)
H = timedelta(hours=1)


def client(fs, **kw) -> FlexStreamClient:
    return FlexStreamClient(fs.bootstrap, settings=fs.settings(), **kw)


def tomorrow() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def test_refused_readings_send_nothing_and_a_new_registration_is_found(fs):
    with client(fs) as c:
        with pytest.raises(InputError, match=r"'heat-pump' \(values\[0:2\]\) is not registered"):
            c.publish_readings("heat-pump", T0, Q, [1.0, 2.0], source="meter")
        with pytest.raises(InputError, match="PT1H apart.*PT15M") as exc:
            c.publish_readings("load", T0, H, [1.0, 2.0], source="meter")
        assert exc.value.field == "resolution"
        with pytest.raises(InputError, match="unit 'EUR/MWh'"):
            c.publish_reading("load", T0, 1.0, resolution=Q, source="meter", unit="EUR/MWh")
        assert fs.end_offsets("readings.meter") == 0
        reads = c.known_sensors.reads
        # Registered a moment ago (the client read the registry before): found on the miss.
        heat = Sensor(name="heat-pump", unit="kW", event_resolution="PT15M")
        producer = ConfirmingProducer({"bootstrap.servers": fs.bootstrap})
        register(producer, fs.topic("registry"), [heat])
        assert c.publish_readings("heat-pump", T0, Q, [1.0, 2.0], source="meter").confirmed
        assert c.known_sensors.reads == reads + 1
        assert fs.end_offsets("readings.meter") == 1
        # Opting out, per call or for the client, sends without reading the registry.
        c.publish_readings("ghost", T0, Q, [1.0], source="meter", check=False)
    with client(fs, check=False) as unchecked:
        unchecked.publish_reading("ghost", T0, 1.0, resolution=H, source="meter")
        assert unchecked.known_sensors.reads == 0
    assert fs.end_offsets("readings.meter") == 3


def test_wait_landed_tells_stored_from_dead_lettered_and_future_prices_land(fs):
    fs.start_worker()
    day = tomorrow()
    published = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    with client(fs, clock=lambda: published) as c:
        prices = c.publish_readings(
            "price", day, H, [40.0 + h for h in range(24)], source="epex", topic="price"
        )
        landing = c.wait_landed(prices, timeout=90)
        assert (landing.stored, landing.dead_lettered, landing.all_stored) == (1, 0, True)
        # Believed at the client's time of publishing, before every event.
        rows = fs.sql(
            "SELECT count(), min(belief_time), max(belief_time) FROM flexstream.beliefs FINAL "
            "WHERE sensor = 'price'"
        )
        assert rows[0][0] == 24
        assert {from_engine_time(str(t)) for t in rows[0][1:]} == {published}

        good = c.publish_readings(
            "load", T0, Q, [1.0, 2.0], source="meter", belief_horizon=timedelta(0), wait=False
        )
        bad = c.publish_readings("load", T0 + 2 * Q, Q, [3.0, float("nan")], source="meter")
        landing = c.wait_landed([good, bad], timeout=90)
    assert (landing.published, landing.stored, landing.dead_lettered) == (2, 1, 1)
    assert not landing.all_stored
    (letter,) = landing.dead_letters
    assert letter.origin == bad.positions[0] and letter.item == 1 and letter.sensor == "load"
    assert (letter.error, letter.field) == ("not-finite", "values[1]")
    assert "not a finite number" in letter.reason
    # The rest of the batch with the NaN is stored.
    assert fs.sql("SELECT count() FROM flexstream.beliefs FINAL WHERE sensor = 'load'")[0][0] == 3

    async def follow() -> tuple[int, int]:
        async with AsyncFlexStreamClient(fs.bootstrap, settings=fs.settings()) as ac:
            r = await ac.publish_reading("soc", T0, 4.0, resolution=timedelta(0), source="bms")
            got = await ac.wait_landed(r, timeout=90)
            return got.stored, got.dead_lettered

    assert asyncio.run(follow()) == (1, 0)


def test_wait_landed_without_a_worker_raises_with_what_is_pending(fs):
    with client(fs) as c:
        r = c.publish_readings("load", T0, Q, [1.0, 2.0], source="meter", wait=False)
        with pytest.raises(NotLanded, match="1 of 1 messages were not handled within 2 s") as exc:
            c.wait_landed(r, timeout=2, every=0.2)
    assert r.confirmed
    assert (exc.value.landing.pending, exc.value.landing.stored) == (1, 0)
