"""The SDK's pure parts: records, validation, batching, schedule parsing, answer collapsing."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from connectors.sdk import (
    AnswerBook,
    FlexStreamClient,
    Schedule,
    batch_records,
    belief_record,
    build_request,
    collapse,
    decode_schedule,
)
from connectors.settings import KafkaSettings, Settings
from schemas import serde
from schemas.errors import ConnectorError, InputError
from streams.cli import main
from streams.cli.schedules import exit_code, parse_start

T0 = datetime(2026, 4, 1, tzinfo=UTC)
Q = timedelta(minutes=15)


def schedule_record(**kw) -> dict:
    rec = {
        "request_id": "r1",
        "asset": "site",
        "sensor": "battery",
        "status": "optimal",
        "start": T0,
        "resolution_ms": 900_000,
        "values": [1.0, -2.0, 0.5],
        "state_of_charge": [5.0, 5.25, 4.75, 4.875],
        "costs_total": 1.25,
        "currency": "EUR",
        "costs": json.dumps({"energy": 1.0, "breaches": 0.25}),
        "breaches": json.dumps(
            [{"constraint": "site-power-capacity", "datetime": "2026-04-01T00:15:00+00:00"}]
        ),
        "belief_time": T0 - timedelta(minutes=1),
    }
    rec.update(kw)
    return rec


def test_a_schedule_is_parsed_from_an_encoded_record():
    s = decode_schedule(serde.encode("Schedule", schedule_record()))
    assert s is not None and s.ok
    assert s.start == T0 and s.start.tzinfo is not None and s.resolution == Q
    assert s.timestamps == [T0, T0 + Q, T0 + 2 * Q]
    assert s.end == T0 + 3 * Q
    assert s.values == [1.0, -2.0, 0.5] and s.state_of_charge[-1] == 4.875
    assert s.costs == {"energy": 1.0, "breaches": 0.25}
    assert s.breaches[0]["constraint"] == "site-power-capacity"
    assert s.unit == "kW" and s.soc_unit == "kWh" and s.origin == "request"
    # The record round-trips through the schema.
    again = decode_schedule(serde.encode("Schedule", s.to_record()))
    assert again == s
    js = s.to_json()
    assert js["resolution"] == "PT15M" and js["start"] == "2026-04-01T00:00:00+00:00"
    json.dumps(js)


@pytest.mark.parametrize(
    ("status", "ok"),
    [("optimal", True), ("relaxed", True), ("infeasible", False), ("error", False)],
)
def test_ok_is_true_for_optimal_and_relaxed_only(status, ok):
    assert Schedule.from_record(schedule_record(status=status)).ok is ok


def test_a_failed_schedule_has_no_steps_and_bad_json_fields_become_empty():
    s = Schedule.from_record(
        schedule_record(
            status="invalid", values=[], state_of_charge=[], costs="", breaches="not json"
        )
    )
    assert not s.ok and s.timestamps == [] and s.costs == {} and s.breaches == []


def test_decode_schedule_ignores_other_messages():
    assert decode_schedule(None) is None
    assert decode_schedule(b"junk") is None
    belief = {"sensor": "x", "event_start": T0, "event_value": 1.0}
    assert decode_schedule(serde.encode("Belief", belief)) is None


def test_nan_values_become_null_in_json():
    s = Schedule.from_record(schedule_record(values=[math.nan], costs_total=None))
    assert s.to_json()["values"] == [None] and s.to_json()["costs_total"] is None


def test_long_series_are_split_into_contiguous_messages():
    recs = batch_records("pv", T0, Q, range(10), source="meter", max_values=4)
    assert [len(r["values"]) for r in recs] == [4, 4, 2]
    assert [r["start"] for r in recs] == [T0, T0 + 4 * Q, T0 + 8 * Q]
    assert sum((r["values"] for r in recs), []) == [float(v) for v in range(10)]
    assert all(r["resolution_ms"] == 900_000 and r["source"] == "meter" for r in recs)
    for r in recs:  # every record is encodable
        assert serde.decode(serde.encode("BeliefBatch", r))[1]["values"] == r["values"]


def test_batches_carry_belief_time_or_horizon_and_unit():
    bt = datetime(2026, 4, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    (rec,) = batch_records("price", T0, Q, [1.0], source="market", belief_time=bt, unit="EUR/MWh")
    assert rec["belief_time"] == T0 and rec["belief_time"].tzinfo == UTC
    assert rec["belief_horizon_ms"] is None and rec["unit"] == "EUR/MWh"
    (rec,) = batch_records("pv", T0, Q, [1.0], source="f", belief_horizon=timedelta(hours=1))
    assert rec["belief_horizon_ms"] == 3_600_000 and rec["belief_time"] is None


def test_nan_is_sent_as_is():
    (rec,) = batch_records("pv", T0, Q, [1.0, math.nan], source="meter")
    assert math.isnan(rec["values"][1])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"start": datetime(2026, 4, 1)}, "start"),  # noqa: DTZ001 - naive on purpose
        ({"start": "2026-04-01"}, "start"),
        ({"resolution": timedelta(0)}, "resolution"),
        ({"resolution": 900}, "resolution"),
        ({"values": []}, "values"),
        ({"values": "123"}, "values"),
        ({"values": [1.0, "x"]}, "values[1]"),
        ({"sensor": ""}, "sensor"),
        ({"source": " "}, "source"),
        ({"belief_time": T0, "belief_horizon": Q}, "belief_horizon"),
        ({"belief_time": datetime(2026, 4, 1)}, "belief_time"),  # noqa: DTZ001
        ({"cumulative_probability": 1.5}, "cumulative_probability"),
        ({"max_values": 0}, "max_values"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(kwargs, field):
    args = {"sensor": "pv", "start": T0, "resolution": Q, "values": [1.0], "source": "m"}
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        batch_records(**args)
    assert err.value.field == field
    assert isinstance(err.value, ValueError)


def test_a_single_belief_record():
    rec = belief_record("soc", T0, 4, resolution=timedelta(0), source="bms")
    assert rec["event_value"] == 4.0 and rec["event_resolution_ms"] == 0
    assert serde.decode(serde.encode("Belief", rec))[1]["event_start"] == T0
    with pytest.raises(InputError, match="value"):
        belief_record("soc", T0, "four", resolution=timedelta(0), source="bms")
    with pytest.raises(InputError, match="event_start"):
        belief_record("soc", datetime(2026, 4, 1), 1, resolution=Q, source="bms")  # noqa: DTZ001


def test_a_request_record():
    now = T0 - timedelta(hours=1)
    rec = build_request(
        "site",
        T0,
        timedelta(hours=6),
        devices=["battery"],
        flex_model={"soc-at-start": "5 kWh"},
        flex_context='{"site-power-capacity": "10 kW"}',
        request_id="abc",
        now=now,
    )
    assert rec == {
        "request_id": "abc",
        "asset": "site",
        "devices": ["battery"],
        "start": T0,
        "duration_ms": 6 * 3_600_000,
        "resolution_ms": 900_000,
        "flex_model": '{"soc-at-start": "5 kWh"}',
        "flex_context": '{"site-power-capacity": "10 kW"}',
        "requested_at": now,
        "origin": "request",
    }
    assert serde.decode(serde.encode("ScheduleRequest", rec))[1]["devices"] == ["battery"]
    rid = build_request("site", T0, timedelta(hours=1))["request_id"]
    assert len(rid) == 36 and rid != build_request("site", T0, timedelta(hours=1))["request_id"]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"asset": ""}, "asset"),
        ({"start": datetime(2026, 4, 1)}, "start"),  # noqa: DTZ001
        ({"duration": timedelta(minutes=20)}, "duration"),
        ({"duration": timedelta(0)}, "duration"),
        ({"resolution": timedelta(seconds=-1)}, "resolution"),
        ({"devices": "battery"}, "devices"),
        ({"devices": ["ok", ""]}, "devices[1]"),
        ({"flex_model": "{not json"}, "flex_model"),
        ({"flex_context": 3}, "flex_context"),
        ({"flex_context": "[1]"}, "flex_context"),
        ({"flex_context": [{"a": 1}]}, "flex_context"),
        ({"flex_model": "3"}, "flex_model"),
        ({"flex_model": [{"sensor": "a"}, 2]}, "flex_model[1]"),
        ({"request_id": ""}, "request_id"),
        ({"request_id": "  "}, "request_id"),
    ],
)
def test_bad_request_arguments_name_the_argument(kwargs, field):
    args = {"asset": "site", "start": T0, "duration": timedelta(hours=1)}
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        build_request(**args)
    assert err.value.field == field


def _s(sensor: str, request_id: str = "r1", **kw) -> Schedule:
    return Schedule.from_record(schedule_record(sensor=sensor, request_id=request_id, **kw))


def test_duplicate_answers_collapse_to_the_last():
    first, again = _s("battery", values=[1.0]), _s("battery", values=[2.0])
    out = collapse([first, _s("ev"), again, _s("battery", request_id="r2")])
    assert [(s.request_id, s.sensor) for s in out] == [
        ("r1", "battery"),
        ("r2", "battery"),
        ("r1", "ev"),
    ]
    assert out[0].values == [2.0]


def test_the_answer_book_completes_on_expected_devices_or_a_quiet_period():
    book = AnswerBook()
    assert not book.complete("r1", None, 0.0, 0.5)
    book.add(_s("battery", values=[1.0]), 1.0)
    assert not book.complete("r1", ["battery", "ev"], 1.0, 0.5)
    assert not book.complete("r1", None, 1.2, 0.5)
    assert book.complete("r1", None, 1.5, 0.5)
    book.add(_s("battery", values=[3.0]), 1.6)  # a duplicate answer
    book.add(_s("ev"), 1.7)
    book.add(_s("ev", request_id="r2"), 1.7)
    assert book.complete("r1", ["battery", "ev"], 1.7, 0.5)
    got = book.pop("r1")
    assert [s.sensor for s in got] == ["battery", "ev"] and got[0].values == [3.0]
    assert book.answers("r1") == [] and [s.sensor for s in book.answers("r2")] == ["ev"]


def test_output_sensor_records_are_left_out_of_the_answers_whenever_they_arrive():
    """The devices' answers are the same whether an output sensor's record came first or last."""
    devices = ["battery"]
    first, last = AnswerBook(), AnswerBook()
    first.add(_s("site-net", answered_devices=devices), 1.0)
    first.add(_s("battery", answered_devices=devices), 1.1)
    last.add(_s("battery", answered_devices=devices), 1.0)
    for book in (first, last):
        assert book.complete("r1", None, 1.2, 0.5)
        assert [s.sensor for s in book.pop("r1")] == ["battery"]


def test_the_client_needs_a_bootstrap_and_takes_prefix_and_security_from_settings(monkeypatch):
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    with pytest.raises(ConnectorError, match="flexstream up"):
        FlexStreamClient(settings=Settings(kafka=KafkaSettings()))
    k = KafkaSettings(
        KAFKA_BOOTSTRAP_SERVERS="k1:9093",
        FLEXSTREAM_TOPIC_PREFIX="acme.",
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="PLAIN",
    )
    c = FlexStreamClient(settings=Settings(kafka=k), linger_ms=20)
    assert c.topic("schedules") == "acme.schedules" and c.bootstrap == "k1:9093"
    assert c._conf["security.protocol"] == "SASL_SSL" and c._conf["linger.ms"] == 20
    with pytest.raises(InputError, match="topic"):
        c.publish_readings("pv", T0, Q, [1.0], source="m", topic="prices")  # type: ignore[arg-type]
    c.close()
    assert FlexStreamClient("h:1", topic_prefix="x.").topic("registry") == "x.registry"


def test_start_now_is_floored_to_the_resolution():
    now = datetime(2026, 4, 1, 10, 37, 12, tzinfo=UTC)
    assert parse_start("now", Q, now) == datetime(2026, 4, 1, 10, 30, tzinfo=UTC)
    assert parse_start("2026-04-01T00:00+02:00", Q) == datetime(2026, 3, 31, 22, tzinfo=UTC)
    with pytest.raises(InputError, match="--start"):
        parse_start("2026-04-01T00:00", Q)
    with pytest.raises(InputError, match="--start"):
        parse_start("tomorrow", Q)


@pytest.mark.parametrize(
    ("option", "value"),
    [("--resolution", "-PT15M"), ("--resolution", "PT0M"), ("--duration", "-P1D")],
)
def test_add_schedule_refuses_durations_that_are_not_positive(option, value):
    args = ["--asset", "site", "--start", "now", "--duration", "P1D", option, value]
    res = CliRunner().invoke(main, ["add", "schedule", *args])
    assert res.exit_code == 2
    assert res.stderr.startswith(f"error: {option}: the duration must be positive")


def test_exit_codes_follow_the_statuses():
    assert exit_code([_s("a"), _s("b", status="relaxed")]) == 0
    assert exit_code([_s("a"), _s("b", status="infeasible")]) == 2
    assert exit_code([_s("a", status="time-limit")]) == 3


def test_answers_listing_their_devices_complete_without_a_quiet_period():
    book = AnswerBook()
    book.add(_s("battery", answered_devices=["battery", "ev"]), 1.0)
    assert not book.complete("r1", None, 99.0, 0.5)
    book.add(_s("ev", answered_devices=["battery", "ev"]), 1.1)
    assert book.complete("r1", None, 1.1, 0.5)
    assert Schedule.from_record(schedule_record()).answered_devices == []
