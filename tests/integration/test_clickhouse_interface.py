"""The worker's read-only ClickHouse HTTP interface, used by the real clickhouse-connect client.

A running worker holds the embedded engine's folder; standard ClickHouse clients
reach the history through it, with the worker's token, and cannot change it.
"""

from __future__ import annotations

import base64
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from ipaddress import IPv4Address
from uuid import UUID

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import ClickHouseError
from test_sql_security import COUNTS, attacks, listener  # noqa: F401 - listener is a fixture

from streams.sql import auth as sql_auth
from tests.integration.conftest import batch, wait_for

pytestmark = pytest.mark.integration

MANY_TYPES = (
    "SELECT sensor, [1, 2]::Array(UInt8), map('a', 1)::Map(String, UInt8), "
    "tuple(1, 'x')::Tuple(UInt8, String), CAST(NULL, 'Nullable(Float64)'), "
    "toDecimal64(1.5, 3), toUUID('61f0c404-5cb3-11e7-907b-a6006ad3dba0'), toIPv4('1.2.3.4'), "
    "toFixedString('ab', 2), toDate(event_start), event_start, repeat('x', 300) "
    "FROM beliefs ORDER BY event_start LIMIT 3"
)


def _http(port: int, params: dict[str, str], body: bytes = b"", headers=None):
    url = f"http://127.0.0.1:{port}/?{urllib.parse.urlencode(params)}"
    req = urllib.request.Request(url, data=body or None, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_clickhouse_connect_queries_the_running_worker_and_cannot_write(fs, tmp_path, listener):  # noqa: F811
    fs.start_worker()
    # Live readings: the last 12 hours up to now, as a meter sends them.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=12)
    values = [float(i) / 4 for i in range(48)]
    fs.publish("readings.meter", [("load", batch("load", start, values))])
    wait_for(lambda: fs.sql(COUNTS)[0] == [48, 48], what="48 beliefs")
    token = sql_auth.read_token(fs.data_dir)
    assert token

    # A client as Python analysts open one (bearer token), and as Grafana does (user/password).
    bearer = clickhouse_connect.get_client(
        host="127.0.0.1", port=fs.clickhouse_port, access_token=token, database="flexstream"
    )
    basic = clickhouse_connect.get_client(
        host="127.0.0.1", port=fs.clickhouse_port, username="grafana", password=token
    )
    for client in (bearer, basic):
        assert client.command("SELECT count() FROM beliefs") == 48
        rows = client.query(
            "SELECT event_start, event_value FROM beliefs WHERE sensor = {s:String} "
            "ORDER BY event_start",
            parameters={"s": "load"},
        ).result_rows
        assert [r[1] for r in rows] == values
        assert rows[0][0].replace(tzinfo=UTC) == start.replace(tzinfo=UTC)
        df = client.query_df(
            "SELECT sensor, sum(event_value) AS total FROM beliefs GROUP BY sensor"
        )
        assert df.to_dict("records") == [{"sensor": "load", "total": sum(values)}]
        table = client.query_arrow("SELECT event_value FROM beliefs ORDER BY event_start")
        assert table.column("event_value").to_pylist() == values
        # The client found the protocol revision it asked for and reads Native blocks with
        # their block info, across the types of the tables and what analysts compute.
        assert client.protocol_version > 0
        many = client.query(MANY_TYPES).result_rows
        at = [start + timedelta(minutes=15 * i) for i in range(3)]
        assert many == [
            (
                "load",
                [1, 2],
                {"a": 1},
                (1, "x"),
                None,
                Decimal("1.500"),
                UUID("61f0c404-5cb3-11e7-907b-a6006ad3dba0"),
                IPv4Address("1.2.3.4"),
                b"ab",
                t.date(),
                t.replace(tzinfo=None),
                "x" * 300,
            )
            for t in at
        ]

        # Writes, DDL, files and the network are refused, with ClickHouse's kind of error.
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        for sql, fmt in attacks(out, listener.port):
            if not sql or fmt != "JSONCompact" or sql == "SELECT 1 FORMAT CSV":
                continue  # attacks on the format, which clients here name in the SQL
            with pytest.raises(ClickHouseError, match="refused|READONLY|not offered"):
                client.command(sql)
        with pytest.raises(ClickHouseError):
            client.insert("beliefs", [["load"]], column_names=["sensor"])
        assert list(out.iterdir()) == []
        assert listener.hits == []
        assert client.command("SELECT count() FROM beliefs") == 48
    bearer.close()
    basic.close()

    # Without the token nothing is answered; a wrong one neither.
    with pytest.raises(ClickHouseError):
        clickhouse_connect.get_client(host="127.0.0.1", port=fs.clickhouse_port, password="nope")
    status, body, headers = _http(fs.clickhouse_port, {"query": "SELECT 1"})
    assert status == 401 and headers["X-ClickHouse-Exception-Code"] == "516"

    key = {"X-ClickHouse-User": "x", "X-ClickHouse-Key": token}
    # A setting in the URL does not lift read-only; the statement is refused all the same.
    status, body, headers = _http(
        fs.clickhouse_port,
        {"query": "INSERT INTO beliefs (sensor) VALUES ('x')", "readonly": "0"},
        headers=key,
    )
    assert status == 403 and b"refused" in body
    # A browser's request (with Origin) is refused even with the token.
    status, _, _ = _http(fs.clickhouse_port, {"query": "SELECT 1"}, headers={**key, "Origin": "x"})
    assert status == 403
    # The statement in the body, the format as a URL setting; TabSeparated by default.
    status, body, headers = _http(
        fs.clickhouse_port, {"default_format": "CSVWithNames"}, b"SELECT 1 AS a", key
    )
    assert (status, body, headers["X-ClickHouse-Format"]) == (200, b'"a"\n1\n', "CSVWithNames")
    status, body, _ = _http(fs.clickhouse_port, {"query": "SELECT 2"}, headers=key)
    assert (status, body) == (200, b"2\n")
    basic_auth = {"Authorization": "Basic " + base64.b64encode(f"u:{token}".encode()).decode()}
    status, body, _ = _http(
        fs.clickhouse_port, {"database": "system", "query": "SELECT 1"}, headers=basic_auth
    )
    assert status == 404 and b"flexstream" in body
    status, body, _ = _http(fs.clickhouse_port, {})
    assert (status, body) == (200, b"Ok.\n")
    assert fs.sql(COUNTS)[0] == [48, 48]
