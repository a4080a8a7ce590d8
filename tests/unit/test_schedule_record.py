"""The Schedule record, its Avro round trip and old versions, and the status and code enums."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

import solvers
from schemas import serde
from schemas.beliefs import Sensor
from schemas.errors import InputError
from schemas.rejections import Rejection, RejectionCode
from schemas.schedule import USABLE, Schedule, ScheduleRequestContext, Status
from solvers.backend import Termination
from solvers.examples import battery_problem
from streams.cli.schedules import exit_code
from streams.ingest.step import RawMessage, dead_letter, ingest

T0 = datetime(2026, 4, 1, tzinfo=UTC)
Q = timedelta(minutes=15)
NOW = T0 - timedelta(minutes=1)


def context(devices=("battery",), **kw) -> ScheduleRequestContext:
    return ScheduleRequestContext(
        **{
            "request_id": "r1",
            "asset": "site",
            "devices": tuple(devices),
            "start": T0,
            "resolution": Q,
            "belief_time": NOW,
            **kw,
        }
    )


@pytest.fixture(scope="module")
def solved() -> solvers.ScheduleResult:
    result = solvers.schedule(battery_problem(8))
    assert result.status is Status.OPTIMAL
    return result


def test_a_solved_request_becomes_one_record_per_device_that_round_trips_through_avro(solved):
    [s] = solved.to_schedules(context(), solver_time_ms=12.5)
    assert (s.request_id, s.asset, s.sensor, s.status) == ("r1", "site", "battery", "optimal")
    assert len(s.values) == 8 and len(s.state_of_charge) == 9 and s.ok
    assert s.costs_total == pytest.approx(solved.costs.total) and s.currency == "EUR"
    assert s.costs["production-revenue"] == pytest.approx(solved.costs.production_revenue)
    assert s.answered_devices == ["battery"] and s.solver_time_ms == 12.5
    again = Schedule.from_avro(s.to_avro())
    assert again == s and again.status is Status.OPTIMAL
    assert serde.decode(s.to_avro())[1]["status"] == "optimal"


def test_devices_not_scheduled_or_unusable_outcomes_carry_no_values(solved):
    ctx = context(devices=("battery", "ghost"))
    battery, ghost = solved.to_schedules(ctx)
    assert battery.values and ghost.values == [] and ghost.answered_devices == ["battery", "ghost"]
    infeasible = solvers.ScheduleResult(Status.INFEASIBLE, solved.grid, message="no way")
    [s] = infeasible.to_schedules(context())
    assert (s.status, s.values, s.state_of_charge, s.message) == ("infeasible", [], [], "no way")
    assert s.costs == {"total": None, "currency": None} and s.costs_total is None
    assert Schedule.from_avro(s.to_avro()) == s


def test_failures_answer_every_device_and_round_trip():
    answers = context(devices=("a", "b")).failed(Status.INVALID, "asset: not registered")
    assert [(a.sensor, a.status, a.message) for a in answers] == [
        ("a", "invalid", "asset: not registered"),
        ("b", "invalid", "asset: not registered"),
    ]
    assert [Schedule.from_avro(a.to_avro()) for a in answers] == answers


def test_a_version_1_message_still_reads():
    rec = context().schedule("battery", Status.RELAXED, values=[1.0, 2.0]).to_record()
    del rec["answered_devices"]  # added in version 2
    old = serde.encode("Schedule", rec, schema_id=7)
    assert serde.schema_id_of(old) == 7
    s = Schedule.from_avro(old)
    assert (s.status, s.values, s.answered_devices) == (Status.RELAXED, [1.0, 2.0], [])
    assert s.start == T0 and s.resolution == Q and s.belief_time == NOW


def test_statuses_are_typed_and_a_status_of_a_newer_writer_reads_as_unknown():
    s = context().schedule("battery", "time-limit")
    assert s.status is Status.TIME_LIMIT
    with pytest.raises(ValueError):
        context().schedule("battery", "cancelled")
    rec = {**s.to_record(), "status": "cancelled"}
    assert Schedule.from_avro(serde.encode("Schedule", rec)).status is Status.UNKNOWN
    assert json.loads(json.dumps(s.to_json()))["status"] == "time-limit"


def test_naive_times_are_refused_naming_the_field():
    with pytest.raises(InputError) as exc:
        context(belief_time=datetime(2026, 4, 1)).failed(Status.ERROR, "x")  # noqa: DTZ001
    assert exc.value.field == "belief_time"


def test_one_status_enum_holds_every_solver_outcome_and_the_schedulers_own():
    assert solvers.Status is Status
    assert {str(t) for t in Termination} <= set(Status)
    assert set(Status) == {
        "optimal",
        "relaxed",
        "infeasible",
        "unbounded",
        "time-limit",
        "unknown",
        "invalid",
        "error",
    }
    assert USABLE == {s for s in Status if s.usable} == {"optimal", "relaxed"}
    assert {s for s in Status if s.failed} == {"infeasible", "invalid", "error"}


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["optimal", "relaxed"], 0),
        (["optimal", "infeasible"], 2),
        (["invalid"], 2),
        (["error"], 2),
        (["unbounded"], 3),
        (["time-limit", "optimal"], 3),
    ],
)
def test_the_cli_exit_code_follows_the_statuses(statuses, code):
    assert exit_code([context().schedule("battery", s) for s in statuses]) == code


def test_rejections_take_only_known_codes():
    assert Rejection("off-grid", "r").error is RejectionCode.OFF_GRID
    with pytest.raises(ValueError):
        Rejection("no-such-code", "r")


def test_every_dead_letter_code_ingest_produces_is_a_member_and_a_plain_string_on_the_wire():
    sensors = {"meter": Sensor(name="meter", unit="kW")}

    def batch(**kw) -> bytes:
        rec = {
            "sensor": "meter",
            "start": T0,
            "resolution_ms": 900_000,
            "values": [1.0, 2.0],
            "belief_time": None,
            "belief_horizon_ms": None,
            "source": "m",
            "cumulative_probability": 0.5,
            "unit": None,
            **kw,
        }
        return serde.encode("BeliefBatch", rec)

    values = [
        b"\x07not avro",
        None,
        batch(sensor="ghost"),
        batch(values=[]),
        batch(values=[1.0, float("nan")]),
        batch(start=T0 + timedelta(minutes=1)),
        batch(unit="EUR/MWh"),
        batch(cumulative_probability=2.0),
        batch(resolution_ms=60_000),
        batch(source=""),
    ]
    msgs = [RawMessage("readings", 0, i, None, v) for i, v in enumerate(values)]
    letters = ingest(msgs, sensors, T0 + timedelta(days=1)).dead_letters
    codes = [d["error"] for d in letters]
    assert len(codes) == len(values) and all(type(c) is RejectionCode for c in codes)
    assert set(codes) >= {"bad-bytes", "unknown-sensor", "not-finite", "off-grid", "bad-source"}
    rec = serde.decode(serde.encode("DeadLetter", letters[0]))[1]
    assert type(rec["error"]) is str and rec["error"] == "bad-bytes"
    d = dead_letter(msgs[0], Rejection(RejectionCode.STORE_REJECTED, "refused"), T0)
    assert serde.decode(serde.encode("DeadLetter", d))[1]["error"] == "store-rejected"
