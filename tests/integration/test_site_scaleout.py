"""Scale-out of the schedule role: two scheduling workers share the sites (real broker and engine).

One ingest worker and two schedule-only workers on one prefix, with
``FLEXSTREAM_WORKER_SITE_PARTITIONS=3``: each request is answered once, by the
worker active for its site's partition, with the schedule a single scheduler
computes from the same beliefs; a SIGKILLed worker's sites move to the other
worker with their state, and the requests pending for them are answered.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition

from connectors.kafka import (
    ConfirmingProducer,
    ensure_topics,
    site_partition,
    site_topic_partitions,
)
from connectors.sdk import FlexStreamClient
from infra import kafka_local
from schemas import serde
from schemas.assets import Asset
from schemas.beliefs import BeliefColumns, Sensor, validate
from streams import runtime
from streams.beliefs.state import BeliefState
from streams.scheduling import problem as scheduling
from streams.scheduling.agent import floor_time
from tests.integration.conftest import DIST, Env, wait_for
from tests.integration.test_cli import run
from tests.integration.test_scheduling import prices

pytestmark = pytest.mark.integration

P = 3
SITES = [f"site{i}" for i in range(6)]


def sensors() -> list[dict]:
    out = [
        {"name": price, "unit": "EUR/MWh", "event_resolution": "PT1H"}
        for price in ("da-price", "rp-price")
    ]
    for s in [*SITES, "rp"]:
        out.append({"name": f"{s}-power", "unit": "kW", "event_resolution": "PT15M"})
        out.append({"name": f"{s}-soc", "unit": "kWh", "event_resolution": "PT0M"})
    return out


def site_asset(site: str, capacity: float) -> dict:
    return {
        "name": site,
        "flex-context": {"consumption-price": {"sensor": "da-price"}},
        "flex-model": {
            "sensor": f"{site}-power",
            "soc-at-start": {"sensor": f"{site}-soc"},
            "soc-min": "1 kWh",
            "soc-max": "10 kWh",
            "power-capacity": f"{capacity} kW",
            "roundtrip-efficiency": "90%",
        },
    }


def soc_of(site: str, at: datetime, value: float) -> bytes:
    rec = {"sensor": f"{site}-soc", "event_start": at, "event_value": value, "source": "bms"}
    return serde.encode("Belief", rec)


def get(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def answered(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith("flexstream_schedule_requests_answered_total "):
                return float(line.split()[1])
    return 0.0


def committed_all(fs, topic: str) -> bool:
    """Whether the scheduling workers' faust group committed ``topic`` up to its end."""
    name = fs.topic(topic)
    c = Consumer({"bootstrap.servers": fs.bootstrap, "group.id": fs.topic("worker")})
    try:
        parts = c.list_topics(name, timeout=10).topics[name].partitions
        tps = [TopicPartition(name, p) for p in parts]
        got = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)}
        return all(
            max(got[p], 0) >= c.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
            for p in parts
        )
    finally:
        c.close()


def schedules_by_request(fs, expect: int) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for m in fs.consume_all("schedules", expect, timeout=90):
        rec = serde.decode(m.value())[1]
        out.setdefault(rec["request_id"], []).append(rec)
    return out


def answers_to(fs, rids: list[str], timeout: float = 120) -> dict[str, list[dict]]:
    """Every answer on the schedules topic, once each of ``rids`` has at least one.

    Counting answers is not enough to wait on: a request replayed after a
    rebalance is answered again, so the count can reach the number of requests
    while another request is still on its way to its new owner.
    """

    def all_there() -> dict[str, list[dict]] | None:
        got = schedules_by_request(fs, fs.end_offsets("schedules"))
        return got if all(got.get(rid) for rid in rids) else None

    return wait_for(all_there, timeout=timeout, every=1.0, what=f"answers to {len(rids)} requests")


def single_worker_answer(request: dict, readings: list[tuple[str, bytes]], assets, now):
    """What one scheduler computes from the same beliefs (one state holding every sensor)."""
    known = {s["name"]: Sensor.model_validate(s) for s in sensors()}
    state = BeliefState({}, lambda: now)
    parts = []
    for _, value in readings:
        kind, rec = serde.decode(value)
        cols, rejected = validate(kind, rec, known, now)
        assert not rejected
        parts.append(cols)
    state.update(BeliefColumns.concat(parts))
    prepared, failed = scheduling.prepare_or_fail(request, assets, known, state, now, {})
    assert prepared is not None, failed
    result, ms = scheduling.solve(prepared, "highs", 20.0)
    return scheduling.answer(request, prepared, result, ms, now)


def start_scheduler(fs, name: str):
    data, port = fs.data_dir.parent / name, kafka_local.free_port()
    env = {**fs.env, "FLEXSTREAM_DATA_DIR": str(data), "FLEXSTREAM_WORKER_WEB_PORT": str(port)}
    proc = runtime.spawn_worker(env, data / "worker.log", ["--roles", "schedule"])
    fs.workers.append(proc)
    runtime.wait_worker_ready(data, proc, timeout=120)
    return proc, port


def owned(port: int) -> set[int]:
    """The site partitions the worker on ``port`` is active for."""
    return set(get(port, "/health/")["site_partitions"])


def deploy(fs, tmp_path, replication: int = 1):
    """Sites registered, an ingest and two scheduling workers, the readings in their states.

    Returns the schedulers (process, port) pairs, the readings and the assets.
    """
    ensure_topics(
        {"bootstrap.servers": fs.bootstrap},
        fs.prefix,
        replication_factor=replication,
        partitions=site_topic_partitions(P),
    )
    fs.extra_env["FLEXSTREAM_WORKER_SITE_PARTITIONS"] = str(P)
    # Sites spread over every partition (the test's premise).
    assert {site_partition(s, P) for s in SITES} == set(range(P))
    asset_docs = [site_asset(s, 3.0 + i) for i, s in enumerate(SITES)]
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sensors()))
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(asset_docs))
    for kind, f in (("sensor", "s.yaml"), ("asset", "a.yaml")):
        out = run(["add", kind, str(tmp_path / f)], fs.env)
        assert out.returncode == 0, out.stderr
    assets = {a["name"]: Asset.model_validate(a) for a in asset_docs}

    fs.extra_env["FLEXSTREAM_WORKER_ROLES"] = "ingest"
    fs.start_worker()
    del fs.extra_env["FLEXSTREAM_WORKER_ROLES"]
    schedulers = [start_scheduler(fs, "sched-a"), start_scheduler(fs, "sched-b")]
    port_a, port_b = (port for _, port in schedulers)
    wait_for(
        lambda: owned(port_a) and owned(port_b) and owned(port_a) | owned(port_b) == set(range(P)),
        what="the two scheduling workers to split the site partitions",
        timeout=60,
    )
    assert not owned(port_a) & owned(port_b)

    t0 = floor_time(datetime.now(UTC), timedelta(hours=1))
    now = datetime.now(UTC)
    readings = [("da-price", prices(t0 - timedelta(hours=1), 50, now))]
    readings += [
        (f"{s}-soc", soc_of(s, t0 - timedelta(minutes=30), 2.0 + i)) for i, s in enumerate(SITES)
    ]
    fs.publish("readings.price", readings[:1])
    fs.publish("readings.meter", readings[1:])
    wait_for(
        lambda: committed_all(fs, "beliefs-by-site") and fs.end_offsets("beliefs-by-site") == 6,
        what="the site beliefs in the scheduling workers' state",
        timeout=60,
    )
    return schedulers, readings, assets, t0, now


def test_two_scheduling_workers_share_the_sites_and_take_over_on_a_kill(fs, tmp_path):
    [(proc_a, port_a), (_, port_b)], readings, assets, t0, now = deploy(fs, tmp_path)

    client = FlexStreamClient(fs.bootstrap, topic_prefix=fs.prefix, check=False)
    requests = {}
    for s in SITES:
        rid = client.trigger_schedule(
            s, t0, timedelta(hours=24), timedelta(minutes=15), request_id=f"r-{s}"
        )
        requests[rid] = s
    got = schedules_by_request(fs, len(SITES))
    assert sorted(got) == sorted(requests)
    assert all(len(v) == 1 for v in got.values()), "a request answered more than once"
    for [ans] in got.values():
        assert ans["status"] == "optimal", ans["message"]
    # Each worker answered exactly the requests of the sites in its partitions.
    mine_a = sum(site_partition(s, P) in owned(port_a) for s in SITES)
    assert (answered(port_a), answered(port_b)) == (mine_a, len(SITES) - mine_a)
    # Every request lands in its site's partition of schedule-requests.
    for m in fs.consume_all("schedule-requests", len(SITES)):
        assert m.partition() == site_partition(m.key().decode(), P)

    # The same schedules as one scheduler holding every sensor computes.
    for rid, [ans] in got.items():
        request = serde.decode_as(
            serde.encode(
                "ScheduleRequest",
                {
                    "request_id": rid,
                    "asset": requests[rid],
                    "start": t0,
                    "duration_ms": 24 * 3_600_000,
                    "resolution_ms": 900_000,
                    "requested_at": now,
                },
            ),
            "ScheduleRequest",
        )
        [single] = single_worker_answer(request, readings, assets, now)
        assert ans["values"] == pytest.approx(list(single.values), abs=1e-6)

    # A request in another partition than its site's (keyed by asset, as before site
    # partitions) is forwarded to the site's owner and answered there, once.
    stray = next(s for s in SITES if site_partition(s, P) != 0)
    rec = {
        "request_id": "stray",
        "asset": stray,
        "start": t0,
        "duration_ms": 24 * 3_600_000,
        "resolution_ms": 900_000,
        "requested_at": now,
    }
    producer = ConfirmingProducer({"bootstrap.servers": fs.bootstrap})
    producer.send(
        fs.topic("schedule-requests"), serde.encode("ScheduleRequest", rec), stray, partition=0
    )
    producer.flush()
    [ans] = schedules_by_request(fs, len(SITES) + 1)["stray"]
    assert ans["status"] == "optimal" and ans["values"] == got[f"r-{stray}"][0]["values"]

    # A request id sent again: the same answer (same values, same belief time).
    before = fs.end_offsets("schedules")
    client.trigger_schedule(
        SITES[0], t0, timedelta(hours=24), timedelta(minutes=15), request_id="r-site0"
    )
    again = schedules_by_request(fs, before + 1)["r-site0"]
    assert len(again) == 2 and again[0] == again[1]

    # Re-planning on new prices: both workers hold the shared prices, only the owner of
    # the re-planning site's partition re-plans it, once.
    replanning = dict(
        site_asset("rp", 4.0),
        replan={"on-new-prices": True, "duration": "PT6H", "debounce": "PT1S"},
    )
    replanning["flex-context"] = {"consumption-price": {"sensor": "rp-price"}}
    (tmp_path / "rp.yaml").write_text(yaml.safe_dump([replanning]))
    assert run(["add", "asset", str(tmp_path / "rp.yaml")], fs.env).returncode == 0
    time.sleep(2.0)  # every worker's registry view has the asset
    fs.publish("readings.meter", [("rp-soc", soc_of("rp", t0 - timedelta(minutes=30), 3.0))])
    wait_for(
        lambda: committed_all(fs, "beliefs-by-site") and fs.end_offsets("beliefs-by-site") == 7
    )
    fs.publish("readings.price", [("rp-price", prices(t0, 30, now, sensor="rp-price"))])

    def replans() -> list[dict]:
        msgs = fs.consume_all("schedule-requests", fs.end_offsets("schedule-requests"))
        recs = [serde.decode(m.value())[1] for m in msgs]
        return [r for r in recs if r.get("origin") == "replan" and r["asset"] == "rp"]

    wait_for(lambda: replans(), what="a re-plan of rp after its new prices")
    time.sleep(3.0)  # a second worker's re-plan would have come by now
    [replan] = replans()
    [ans] = wait_for(
        lambda: schedules_by_request(fs, fs.end_offsets("schedules")).get(replan["request_id"])
    )
    assert ans["status"] == "optimal", ans["message"]

    # SIGKILL worker A; requests sent right away wait for its partitions to move to B.
    before = fs.end_offsets("schedules")
    lost = owned(port_a)
    b_before = answered(port_b)
    os.kill(proc_a.pid, signal.SIGKILL)
    proc_a.wait(timeout=10)
    pending = [
        client.trigger_schedule(
            s, t0, timedelta(hours=24), timedelta(minutes=15), request_id=f"late-{s}"
        )
        for s in SITES
    ]
    got = answers_to(fs, pending)
    wait_for(lambda: owned(port_b) == set(range(P)), what="B to own every site partition")
    got = schedules_by_request(fs, fs.end_offsets("schedules"))
    for rid in pending:
        # A rebalance on B before it committed replays a request it answered: the same
        # answer again, recognisable by its id. None is lost, none differs.
        assert all(a == got[rid][0] for a in got[rid]), f"{rid} answered differently"
        # With their state: the site's own state-of-charge belief was found on B.
        assert got[rid][0]["status"] == "optimal", got[rid][0]["message"]
        assert got[rid][0]["values"] == got[rid.replace("late-", "r-")][0]["values"]
    assert lost
    # B answered each of them (and perhaps replayed a request A had not committed).
    assert answered(port_b) >= b_before + sum(len(got[rid]) for rid in pending)
    client.close()


def test_site_partitions_on_a_three_node_cluster_with_a_node_stopped_mid_stream(tmp_path):
    """The same deployment on the three-node cluster; a node and a scheduler die mid-stream.

    Requests go out in rounds; after the first, broker node 1 is stopped and
    scheduling worker A is SIGKILLed while the next rounds are on their way.
    Every request is answered exactly once, as one scheduler computes it from
    the same beliefs, and the ingest role stores each schedule once: the
    scheduler's beliefs in ClickHouse (FINAL) count and sum to the answers'.
    """
    ports = [(kafka_local.free_port(), kafka_local.free_port()) for _ in range(3)]
    root = tmp_path / "cluster"
    cluster = kafka_local.start_cluster(root, DIST, nodes=3, ports=ports, heap_mb=256)
    fs = Env(
        bootstrap=cluster.bootstrap,
        prefix=f"t{uuid.uuid4().hex[:10]}.",
        data_dir=tmp_path / "data",
        web_port=kafka_local.free_port(),
        clickhouse_port=kafka_local.free_port(),
        sensors_file=tmp_path / "none.yaml",
    )
    fs.sensors_file.write_text("[]")
    rounds = 4
    try:
        schedulers, readings, assets, t0, now = deploy(fs, tmp_path, replication=3)
        (proc_a, _), (_, port_b) = schedulers
        client = FlexStreamClient(fs.bootstrap, topic_prefix=fs.prefix, check=False)
        sent: dict[str, str] = {}

        def send_round(k: int) -> None:
            for s in SITES:
                rid = client.trigger_schedule(s, t0, timedelta(hours=24), request_id=f"{k}-{s}")
                sent[rid] = s

        send_round(0)
        assert kafka_local.stop(cluster.brokers[1].data_dir)
        send_round(1)
        os.kill(proc_a.pid, signal.SIGKILL)
        proc_a.wait(timeout=10)
        for k in range(2, rounds):
            send_round(k)
        # A request A answered but had not committed when killed may be answered again by
        # B: recognisable by its id, with the same schedule. None is lost.
        answers_to(fs, list(sent))
        wait_for(lambda: owned(port_b) == set(range(P)), what="B to own every site partition")
        got = schedules_by_request(fs, fs.end_offsets("schedules"))
        answers = [a for rid in sent for a in got.get(rid, [])]
        for rid in sent:
            assert {a["status"] for a in got[rid]} == {"optimal"}, got[rid][0]["message"]
            assert all(a["values"] == got[rid][0]["values"] for a in got[rid])
        # Each answer is what one scheduler holding every sensor computes.
        for s in SITES:
            request = {
                "request_id": f"0-{s}",
                "asset": s,
                "start": t0,
                "duration_ms": 24 * 3_600_000,
                "resolution_ms": 900_000,
            }
            [single] = single_worker_answer(request, readings, assets, now)
            for k in range(rounds):
                values = got[f"{k}-{s}"][0]["values"]
                assert values == pytest.approx(list(single.values), abs=1e-6)
        # Every answer stored once by the ingest role: the scheduler's power beliefs
        # (FINAL) count and sum to the answers', none lost or doubled. An answer sent again
        # by the worker that gave it is the same belief (its belief time too), stored once.
        beliefs = {(a["sensor"], a["belief_time"]): a for a in answers}
        query = (
            "SELECT count(), round(sum(event_value), 4) FROM flexstream.beliefs FINAL "
            "WHERE source = 'flexstream-scheduler' AND sensor LIKE '%-power'"
        )
        wait_for(
            lambda: fs.sql(query)[0][0] == 96 * len(beliefs),
            what="every schedule stored once",
            timeout=90,
        )
        total = sum(sum(a["values"]) for a in beliefs.values())
        assert fs.sql(query)[0][1] == pytest.approx(total, abs=1e-3)
        client.close()
    finally:
        for proc in fs.workers:
            runtime.stop_process(proc, timeout=15)
        kafka_local.stop_cluster(root)


def test_one_worker_with_every_role_and_site_partitions_feeds_its_state_from_ingest(fs, tmp_path):
    """On one machine: the ingest role's readings loop repartitions what it stored."""
    ensure_topics(
        {"bootstrap.servers": fs.bootstrap}, fs.prefix, partitions=site_topic_partitions(P)
    )
    fs.extra_env["FLEXSTREAM_WORKER_SITE_PARTITIONS"] = str(P)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(sensors()))
    (tmp_path / "a.yaml").write_text(yaml.safe_dump([site_asset(s, 5.0) for s in SITES[:2]]))
    for kind, f in (("sensor", "s.yaml"), ("asset", "a.yaml")):
        assert run(["add", kind, str(tmp_path / f)], fs.env).returncode == 0
    fs.start_worker()
    assert set(get(fs.web_port, "/health/")["site_partitions"]) == set(range(P))
    t0 = floor_time(datetime.now(UTC), timedelta(hours=1))
    fs.publish("readings.price", [("da-price", prices(t0, 30, datetime.now(UTC)))])
    fs.publish("readings.meter", [(f"{s}-soc", soc_of(s, t0, 5.0)) for s in SITES[:2]])
    wait_for(
        lambda: committed_all(fs, "beliefs-by-site") and fs.end_offsets("beliefs-by-site") == 2
    )
    assert fs.end_offsets("beliefs-shared") == 1
    with FlexStreamClient(fs.bootstrap, topic_prefix=fs.prefix, check=False) as client:
        for s in SITES[:2]:
            [ans] = client.trigger_and_get_schedule(s, t0, timedelta(hours=24), timeout=60)
            assert ans.status == "optimal", ans.message
