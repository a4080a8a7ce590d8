"""Analysts' SQL against the real engine: refused attacks, auth, and no stall of ingestion.

Every attack runs twice: directly (no worker; the CLI opens the store itself)
and through a running worker's HTTP endpoint. Each must be refused, leave no
file behind, reach no server, and leave the beliefs table exactly as it was.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors.clickhouse import Store
from connectors.settings import PathSettings, Settings, WorkerSettings
from schemas import serde
from schemas.beliefs import Sensor, validate
from schemas.errors import ConnectorError
from streams.sql import auth as sql_auth
from streams.sql.access import query_rows, run_sql
from tests.integration.conftest import batch, wait_for

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=UTC)
COUNTS = "SELECT count(), (SELECT count() FROM flexstream.beliefs FINAL) FROM flexstream.beliefs"
LONG = "SELECT count() FROM numbers(1e11) WHERE sipHash64(number) = 7"

#: Table functions of the engine that stay inside the database (or need a
#: setting analysts cannot change); every other one must be on the deny-list.
HARMLESS_TABLE_FUNCTIONS = {
    "SQLStandardValues",
    "dictionary",
    "format",
    "fuzzJSON",
    "fuzzQuery",
    "generateRandom",
    "generateSeries",
    "generate_series",
    "loop",
    "merge",
    "mergeTreeAnalyzeIndexes",
    "mergeTreeAnalyzeIndexesUUID",
    "mergeTreeCodecBlockCounts",
    "mergeTreeIndex",
    "mergeTreeProjection",
    "mergeTreeTextIndex",
    "null",
    "numbers",
    "numbers_mt",
    "primes",
    "timeSeriesData",
    "timeSeriesMetricFamilies",
    "timeSeriesMetrics",
    "timeSeriesSamples",
    "timeSeriesSelector",
    "timeSeriesTags",
    "values",
    "view",
    "viewExplain",
    "viewIfPermitted",
    "zeros",
    "zeros_mt",
}


class Listener:
    """A local HTTP server that counts the requests reaching it."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                hits.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"a\n")

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    srv = Listener()
    yield srv
    srv.close()


def attacks(out: Path, port: int) -> list[tuple[str, str]]:
    """(sql, format) pairs an analyst may not run; ``out`` is a folder that must stay empty."""
    url = f"http://127.0.0.1:{port}/x.csv"
    return [
        ("SELECT '--' AS a; DROP TABLE flexstream.beliefs", "JSONCompact"),
        ("SELECT 1; SELECT 2", "JSONCompact"),
        ("DROP TABLE flexstream.beliefs", "JSONCompact"),
        ("TRUNCATE TABLE flexstream.beliefs", "JSONCompact"),
        ("CREATE TABLE flexstream.x (a Int8) ENGINE = Memory", "JSONCompact"),
        ("INSERT INTO flexstream.beliefs SELECT * FROM flexstream.beliefs", "JSONCompact"),
        (
            "WITH x AS (SELECT 1) INSERT INTO flexstream.beliefs SELECT * FROM flexstream.beliefs",
            "JSONCompact",
        ),
        ("ALTER TABLE flexstream.beliefs DELETE WHERE 1", "JSONCompact"),
        ("OPTIMIZE TABLE flexstream.beliefs FINAL", "JSONCompact"),
        ("SYSTEM DROP MARK CACHE", "JSONCompact"),
        ("KILL QUERY WHERE 1", "JSONCompact"),
        ("SET readonly = 0", "JSONCompact"),
        ("USE system", "JSONCompact"),
        ("SELECT count() FROM flexstream.beliefs SETTINGS readonly = 0", "JSONCompact"),
        ("SELECT 1 SETTINGS max_execution_time = 100000", "JSONCompact"),
        (f"SELECT * FROM flexstream.beliefs INTO OUTFILE '{out}/beliefs.csv'", "JSONCompact"),
        (f"SELECT 1 INTO OUTFILE '{out}/one.csv' FORMAT CSV", "JSONCompact"),
        (f"INSERT INTO FUNCTION file('{out}/f.csv', 'CSV', 'a Int8') VALUES (1)", "JSONCompact"),
        ("SELECT file('/etc/passwd')", "JSONCompact"),
        ("SELECT * FROM file('/etc/passwd', 'LineAsString')", "JSONCompact"),
        ("DESCRIBE TABLE file('/etc/passwd', 'CSVWithNames')", "JSONCompact"),
        ("SELECT * FROM view(SELECT FILE('/etc/passwd') AS f)", "JSONCompact"),
        ("SELECT * FROM filesystem('/etc')", "JSONCompact"),
        (f"SELECT * FROM url('{url}', 'LineAsString')", "JSONCompact"),
        (f"SELECT * FROM s3('{url}', 'LineAsString')", "JSONCompact"),
        (f"SELECT * FROM remote('127.0.0.1:{port}', system.one)", "JSONCompact"),
        ("SELECT * FROM executable('id', 'LineAsString', 'x String')", "JSONCompact"),
        ("SELECT * FROM eval('SELECT 1')", "JSONCompact"),
        ("SELECT * FROM python(x)", "JSONCompact"),
        ("SELECT 1", "JSON; DROP TABLE flexstream.beliefs"),
        ("SELECT 1", "CSV\nSELECT 2"),
        ("SELECT 1 FORMAT CSV", "JSONCompact"),
        ("", "JSONCompact"),
    ]


def assert_all_refused(settings: Settings, out: Path, listener: Listener) -> None:
    before = query_rows(settings, COUNTS)[1]
    assert before[0][0] > 0
    for sql, fmt in attacks(out, listener.port):
        with pytest.raises(ConnectorError, match="query failed: ") as err:
            run_sql(settings, sql, fmt)
        assert any(w in str(err.value) for w in ("refused", "READONLY", "is not offered")), sql
    assert list(out.iterdir()) == []
    assert listener.hits == []
    assert query_rows(settings, COUNTS)[1] == before


def _direct_settings(data_dir: Path, **worker) -> Settings:
    return Settings(paths=PathSettings(data_dir=data_dir), worker=WorkerSettings(**worker))


def _beliefs(n: int):
    rec = {
        "sensor": "pv",
        "start": T0,
        "resolution_ms": 900_000,
        "values": [float(i) for i in range(n)],
        "belief_time": None,
        "source": "meter",
    }
    kind, dec = serde.decode(serde.encode("BeliefBatch", rec))
    pv = Sensor(name="pv", unit="kW", event_resolution="PT15M")
    cols, rejected = validate(kind, dec, {"pv": pv}, datetime(2030, 1, 1, tzinfo=UTC))
    assert rejected == []
    return cols.to_arrow()


@pytest.fixture
def direct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings of a data folder holding 96 beliefs and no worker."""
    monkeypatch.delenv("CLICKHOUSE_URL", raising=False)
    data = tmp_path / "data"
    store = Store.open(None, "flexstream", data)
    store.insert_beliefs(_beliefs(96))
    store.close()
    return _direct_settings(data)


def test_attacks_are_refused_without_a_worker(direct, tmp_path, listener):
    out = tmp_path / "out"
    out.mkdir()
    assert query_rows(direct, COUNTS)[1] == [[96, 96]]
    assert_all_refused(direct, out, listener)
    names, rows = query_rows(direct, "SELECT sum(event_value) AS s FROM flexstream.beliefs;")
    assert (names, rows) == (["s"], [[sum(range(96))]])


def test_reading_statements_pass(direct):
    for sql in (
        "SELECT 1",
        "  with x AS (SELECT 1) SELECT * FROM x;",
        "-- hi\nSHOW TABLES FROM flexstream",
        "SELECT ';' AS s -- a note",
        "DESCRIBE flexstream.beliefs",
        "/* c */ explain SELECT count() FROM flexstream.beliefs",
        "EXISTS TABLE flexstream.beliefs",
        "SELECT * FROM numbers(3) WHERE number IN (SELECT 1)",
    ):
        assert run_sql(direct, sql, "CSV"), sql
    assert run_sql(direct, "SELECT 1 AS a, 'x' AS b", "csvwithnames") == b'"a","b"\n1,"x"\n'


def test_every_outside_reaching_table_function_of_the_engine_is_denied(direct):
    from connectors.analyst_sql import denied

    _, rows = query_rows(direct, "SELECT name FROM system.table_functions ORDER BY name")
    unknown = [r[0] for r in rows if r[0] not in HARMLESS_TABLE_FUNCTIONS and not denied([r[0]])]
    assert unknown == [], "classify these table functions as denied or harmless"
    _, aliases = query_rows(direct, "SELECT name, alias_to FROM system.functions")
    assert [n for n, target in aliases if target and denied([target]) and not denied([n])] == []


def test_result_limits_and_a_failed_query_then_a_good_one(tmp_path, monkeypatch):
    monkeypatch.delenv("CLICKHOUSE_URL", raising=False)
    s = _direct_settings(tmp_path / "data", sql_max_result_rows=1000, sql_threads=1)
    with pytest.raises(ConnectorError, match="TOO_MANY_ROWS_OR_BYTES"):
        run_sql(s, "SELECT number FROM numbers(5000)", "CSV")
    assert run_sql(s, "SELECT number FROM numbers(3)", "CSV") == b"0\n1\n2\n"


def _post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/sql/", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _publish_pv(fs, n_msgs: int, per_msg: int, start: datetime = T0) -> int:
    msgs = [
        ("pv", batch("pv", start + timedelta(days=i), [float(v) for v in range(per_msg)]))
        for i in range(n_msgs)
    ]
    fs.publish("readings.meter", msgs)
    return n_msgs * per_msg


def test_attacks_and_strangers_are_refused_by_the_worker(fs, tmp_path, listener):
    fs.start_worker()
    n = _publish_pv(fs, 2, 48)
    wait_for(lambda: fs.sql(COUNTS)[0] == [n, n], what=f"{n} beliefs")
    out = tmp_path / "out"
    out.mkdir()
    assert_all_refused(fs.settings(), out, listener)

    token = sql_auth.read_token(fs.data_dir)
    body = json.dumps({"sql": "SELECT 1 AS a", "format": "JSONCompact"}).encode()
    auth = {"Authorization": f"Bearer {token}"}
    as_json = {"Content-Type": "application/json"}
    status, data = _post(fs.web_port, body, {**auth, **as_json})
    assert status == 200 and json.loads(data)["data"] == [[1]]
    assert _post(fs.web_port, body, as_json)[0] == 401
    assert _post(fs.web_port, body, {**as_json, "Authorization": "Bearer nope"})[0] == 401
    origin = {**auth, **as_json, "Origin": "http://127.0.0.1:8000"}
    assert _post(fs.web_port, body, origin)[0] == 403
    assert _post(fs.web_port, body, {**auth, "Content-Type": "text/plain"})[0] == 415
    assert _post(fs.web_port, b"not json", {**auth, **as_json})[0] == 400
    status, data = _post(fs.web_port, b'{"sql": "SELECT nonsense"}', {**auth, **as_json})
    assert status == 400 and "UNKNOWN_IDENTIFIER" in json.loads(data)["error"]
    assert fs.sql(COUNTS)[0] == [n, n]


def test_a_failed_query_leaves_nothing_for_the_next_one(fs):
    fs.extra_env["FLEXSTREAM_WORKER_SQL_THREADS"] = "1"  # both queries on one client slot
    fs.start_worker()
    s = fs.settings()
    with pytest.raises(ConnectorError, match="boom"):
        run_sql(
            s,
            "SELECT number, throwIf(number > 300000, 'boom') FROM numbers(1000000)",
            "TabSeparated",
        )
    assert json.loads(run_sql(s, "SELECT 42 AS answer"))["data"] == [[42]]
    assert run_sql(s, "SELECT 7", "CSV") == b"7\n"


def test_a_long_analyst_query_does_not_delay_ingestion(fs):
    limit = 20.0
    fs.extra_env["FLEXSTREAM_WORKER_SQL_TIME_LIMIT"] = str(limit)
    fs.start_worker()
    s = fs.settings()
    outcome: dict[str, object] = {}

    def long_query() -> None:
        t0 = time.monotonic()
        try:
            outcome["result"] = run_sql(s, LONG, "CSV")
        except ConnectorError as exc:
            outcome["error"] = str(exc)
        outcome["seconds"] = time.monotonic() - t0

    runner = threading.Thread(target=long_query)
    runner.start()
    running = (
        "SELECT count() FROM system.processes WHERE query LIKE '%numbers(1e11)%' "
        "AND query NOT LIKE '%system.processes%'"
    )
    wait_for(lambda: fs.sql(running)[0][0] == 1, timeout=10, what="the long query to run")

    t0 = time.monotonic()
    n = _publish_pv(fs, 20, 96)
    wait_for(lambda: fs.sql(COUNTS)[0] == [n, n], timeout=limit, every=0.1, what="ingestion")
    took = time.monotonic() - t0
    still_running = fs.sql(running)[0][0]
    runner.join(limit + 30)

    assert took < 8.0, f"ingesting {n} readings took {took:.1f} s beside a long analyst query"
    assert still_running == 1, "the long query ended before ingestion was measured"
    assert "result" not in outcome
    assert "TIMEOUT_EXCEEDED" in str(outcome["error"]) or "Timeout exceeded" in str(
        outcome["error"]
    )
    assert limit - 1 <= float(outcome["seconds"]) < limit + 15  # type: ignore[arg-type]
    assert fs.sql(COUNTS)[0] == [n, n]
