"""Worker roles: parsing, which features a worker installs, what it opens of ClickHouse (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.batch_consumer import RawMessage
from schemas.beliefs import BeliefColumns
from schemas.errors import InputError
from streams import app as worker_app
from streams import operations
from streams.beliefs import agent as beliefs_agent
from streams.beliefs import feed as belief_feed
from streams.beliefs.feed import behind, split_by_topic
from streams.forecasting import agent as forecasting_agent
from streams.ingest import agent as ingest_agent
from streams.ingest import outputs as ingest_outputs
from streams.reports import agent as reports_agent
from streams.roles import (
    ALL_ROLES,
    EVERY_ROLE,
    Role,
    RolesError,
    StoreAccess,
    check_history_access,
    feed_group,
    format_roles,
    parse_roles,
    store_access,
)
from streams.scheduling import agent as scheduling_agent
from streams.sites import agent as sites_agent
from streams.sql import endpoints as sql_endpoints

role_sets = st.sets(st.sampled_from(ALL_ROLES), min_size=1).map(frozenset)


def test_roles_parse_from_a_comma_separated_list():
    assert parse_roles("ingest,schedule") == {Role.INGEST, Role.SCHEDULE}
    assert parse_roles(" Schedule , ,schedule") == {Role.SCHEDULE}
    assert parse_roles(["report", "forecast"]) == {Role.REPORT, Role.FORECAST}
    assert parse_roles("ingest,schedule,report,forecast") == EVERY_ROLE


def test_an_unknown_role_is_refused_naming_the_option_and_the_valid_names():
    with pytest.raises(RolesError) as err:
        parse_roles("ingest,scheduler")
    msg = str(err.value)
    assert msg.startswith("--roles: unknown role(s) 'scheduler'")
    assert "ingest, schedule, report, forecast" in msg
    assert isinstance(err.value, InputError) and isinstance(err.value, ValueError)
    assert err.value.field == "--roles"


def test_an_empty_list_is_refused_and_the_field_can_be_the_variable():
    with pytest.raises(RolesError, match=r"^FLEXSTREAM_WORKER_ROLES: names no role; give one"):
        parse_roles(" , ", "FLEXSTREAM_WORKER_ROLES")


@given(role_sets)
def test_formatting_and_parsing_round_trip_in_the_documented_order(roles):
    names = format_roles(roles)
    assert parse_roles(",".join(reversed(names))) == roles
    assert names == [r.value for r in ALL_ROLES if r in roles]


def test_features_per_role():
    assert worker_app.features_for(frozenset({Role.SCHEDULE})) == [
        beliefs_agent.install,
        sites_agent.install,
        scheduling_agent.install,
        belief_feed.install,
        operations.install,
    ]
    assert worker_app.features_for(frozenset({Role.INGEST})) == [
        ingest_agent.install,
        ingest_outputs.install,
        sql_endpoints.install,
        operations.install,
    ]
    assert worker_app.features_for(frozenset({Role.REPORT})) == [
        reports_agent.install,
        belief_feed.install,
        operations.install,
    ]
    assert worker_app.features_for(frozenset({Role.FORECAST})) == [
        forecasting_agent.install,
        belief_feed.install,
        operations.install,
    ]


@given(role_sets)
def test_every_feature_runs_in_exactly_the_workers_of_its_roles(roles):
    installed = worker_app.features_for(roles)
    every = worker_app.features_for(EVERY_ROLE)
    assert installed == [f for f in every if f in installed]  # the order is kept
    for install, needs in worker_app.FEATURES:
        assert (install in installed) == bool(needs & roles)
    # Only the ingest role writes to ClickHouse and serves its SQL endpoints.
    assert (ingest_agent.install in installed) == (Role.INGEST in roles)
    assert (ingest_outputs.install in installed) == (Role.INGEST in roles)
    assert (sql_endpoints.install in installed) == (Role.INGEST in roles)
    assert operations.install in installed


@given(role_sets)
def test_only_the_ingest_role_opens_the_store_for_writing(roles):
    access = store_access(roles)
    if Role.INGEST in roles:
        assert access is StoreAccess.WRITE
    elif roles & {Role.REPORT, Role.FORECAST}:
        assert access is StoreAccess.READ
    else:
        assert access is StoreAccess.NONE


def test_a_schedule_only_worker_opens_no_store_and_needs_no_server():
    assert store_access({Role.SCHEDULE}) is StoreAccess.NONE
    check_history_access({Role.SCHEDULE}, clickhouse_url_set=False)  # no error


def test_history_readers_without_ingest_need_a_clickhouse_server():
    for roles in ({Role.REPORT}, {Role.FORECAST, Role.SCHEDULE}):
        with pytest.raises(RolesError, match="set CLICKHOUSE_URL") as err:
            check_history_access(roles, clickhouse_url_set=False)
        assert err.value.field == "--roles"
        check_history_access(roles, clickhouse_url_set=True)
    check_history_access(EVERY_ROLE, clickhouse_url_set=False)  # the ingest role's own store


@given(role_sets, role_sets)
def test_feed_groups_are_shared_by_equal_role_sets_only(a, b):
    ga, gb = feed_group(a), feed_group(b)
    assert (ga is None) == (Role.INGEST in a)  # any other role follows the beliefs
    if ga is not None and gb is not None:
        assert (ga == gb) == (a == b)


def test_feed_group_names():
    assert feed_group({Role.SCHEDULE}) == "feed.schedule"
    assert feed_group({Role.FORECAST, Role.REPORT}) == "feed.report+forecast"
    assert feed_group({Role.INGEST, Role.SCHEDULE}) is None


offsets = st.dictionaries(
    st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 3)), st.integers(-1, 50), max_size=8
)


@given(offsets, offsets)
def test_behind_keeps_exactly_the_partitions_not_yet_committed_past(wanted, committed):
    out = behind(wanted, committed)
    assert out.keys() <= wanted.keys()
    for tp, o in wanted.items():
        assert (tp in out) == (committed.get(tp, -1) < o)


def cols(sensor: str, n: int) -> BeliefColumns:
    import numpy as np

    return BeliefColumns(
        [sensor],
        [np.arange(n, dtype=np.int64)],
        [np.zeros(n, dtype=np.uint32)],
        [np.zeros(n, dtype=np.int64)],
        ["s"],
        [np.full(n, 0.5)],
        [np.ones(n)],
        [n],
    )


def test_the_feed_splits_readings_from_report_results():
    msgs = [
        RawMessage("r.meter", 0, 1, b"pv", b""),
        RawMessage("r.reports", 0, 1, b"kpi", b""),
        RawMessage("r.price", 2, 7, b"price", b""),
    ]
    readings, results = split_by_topic(
        msgs, [(0, cols("pv", 2)), (1, cols("kpi", 1)), (2, cols("price", 3))], "r.reports"
    )
    assert readings.sensor == ["pv", "price"] and len(readings) == 5
    assert results.sensor == ["kpi"] and len(results) == 1


def test_the_stored_gate_waits_until_the_ingest_groups_committed_past_the_batch():
    import asyncio

    from streams.beliefs.feed import StoredGate
    from streams.health import Health

    # The ingest group commits one message further on each look.
    committed = {("r.meter", 0): 3, ("r.reports", 0): 9}
    looks: list[tuple[str, list]] = []

    def read(group: str, tps: list[tuple[str, int]]) -> dict:
        looks.append((group, sorted(tps)))
        out = {tp: committed[tp] for tp in tps}
        for tp in tps:
            committed[tp] += 1
        return out

    def group_of(topic: str) -> str:
        return "worker.reports" if topic == "r.reports" else "worker.readings"

    gate = StoredGate(read, group_of, Health(started=True), every=0.0)
    msgs = [
        RawMessage("r.meter", 0, 4, b"pv", b""),
        RawMessage("r.meter", 0, 5, b"pv", b""),
        RawMessage("r.reports", 0, 2, b"kpi", b""),
    ]
    asyncio.run(gate.wait(msgs))  # meter must reach 6 (after offset 5): 3, 4, 5, then 6
    assert [g for g, _ in looks] == [
        "worker.readings",
        "worker.reports",
        "worker.readings",
        "worker.readings",
        "worker.readings",
    ]
    assert looks[1] == ("worker.reports", [("r.reports", 0)])  # already past: asked once
    assert committed[("r.meter", 0)] == 7
