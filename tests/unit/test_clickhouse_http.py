"""The pure parts of the worker's ClickHouse HTTP interface: requests, auth, errors."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.analyst_sql import SqlResult
from schemas.errors import ConnectorError
from streams.sql.clickhouse_http import (
    AUTHENTICATION_FAILED,
    READONLY,
    UNKNOWN_DATABASE,
    ClickHouseHttpError,
    authorized,
    error_of,
    error_text,
    native_for,
    parse_request,
    sent_password,
)

DB = "flexstream"


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_the_query_comes_from_the_url_the_body_or_both_in_that_order():
    assert parse_request({"query": "SELECT 1"}, b"", DB).sql == "SELECT 1"
    assert parse_request({}, b"SELECT 2", DB).sql == "SELECT 2"
    both = parse_request({"query": "SELECT a FROM t WHERE"}, b"a > 1", DB)
    assert both.sql == "SELECT a FROM t WHERE\na > 1"


def test_format_parameters_query_id_and_compression_are_read_other_settings_are_not():
    q = parse_request(
        {
            "query": "SELECT {x:UInt8}",
            "default_format": "Native",
            "param_x": "7",
            "query_id": "q1",
            "enable_http_compression": "1",
            "readonly": "0",
            "max_result_rows": "0",
            "database": DB,
        },
        b"",
        DB,
    )
    assert (q.default_format, q.parameters, q.query_id, q.compress) == (
        "Native",
        {"x": "7"},
        "q1",
        True,
    )
    assert q.ignored == ("max_result_rows", "readonly")
    plain = parse_request({"query": "SELECT 1"}, b"", DB)
    assert plain.default_format is None and not plain.compress and plain.query_id


@pytest.mark.parametrize(
    ("params", "body", "code"),
    [
        ({}, b"", 36),
        ({"query": "  "}, b"\n", 36),
        ({"query": "SELECT 1", "database": "system"}, b"", UNKNOWN_DATABASE),
        ({"query": "SELECT 1", "compress": "1"}, b"", 36),
        ({"decompress": "1"}, b"SELECT 1", 36),
        ({}, b"SELECT '\xff'", 36),
    ],
)
def test_what_cannot_be_served_is_an_error_that_says_what_to_do(params, body, code):
    with pytest.raises(ClickHouseHttpError) as err:
        parse_request(params, body, DB)
    assert err.value.code == code
    assert err.value.status in (400, 404)


def test_default_database_is_the_projects():
    assert parse_request({"query": "SELECT 1", "database": "default"}, b"", DB).sql == "SELECT 1"


def test_the_token_is_taken_as_bearer_basic_password_or_clickhouse_key():
    assert sent_password({"Authorization": "Bearer tok"}) == "tok"
    assert sent_password(_basic("grafana", "tok:with:colons")) == "tok:with:colons"
    assert sent_password({"x-clickhouse-user": "u", "X-ClickHouse-Key": "tok"}) == "tok"
    assert sent_password({"Authorization": "Basic !!notbase64"}) is None
    assert sent_password({}) is None
    authorized({"Authorization": "Bearer tok"}, "tok")
    authorized(_basic("anyone", "tok"), "tok")


@given(sent=st.text(max_size=40), token=st.text(min_size=1, max_size=40))
def test_only_the_exact_token_is_authorized(sent, token):
    headers = {"Authorization": f"Bearer {sent}"}
    if sent.strip() == token:
        authorized(headers, token)
    else:
        with pytest.raises(ClickHouseHttpError) as err:
            authorized(headers, token)
        assert (err.value.status, err.value.code) == (401, AUTHENTICATION_FAILED)


def test_a_browser_request_is_refused_even_with_the_token():
    with pytest.raises(ClickHouseHttpError) as err:
        authorized({"Authorization": "Bearer tok", "Origin": "http://evil"}, "tok")
    assert err.value.status == 403


def test_refusals_and_engine_errors_map_to_clickhouse_codes_and_texts():
    refused = error_of(ConnectorError("refused: it writes"))
    assert (refused.status, refused.code) == (403, READONLY)
    engine = error_of(ConnectorError("Code: 47. DB::Exception: Unknown identifier x"))
    assert (engine.status, engine.code) == (400, 47)
    assert error_text(engine.code, engine.message).startswith("Code: 47. DB::Exception")
    assert error_text(READONLY, "refused: it writes.") == (
        "Code: 164. DB::Exception: refused: it writes. (FLEXSTREAM)\n"
    )


def test_native_results_follow_the_clients_protocol_revision():
    data = b"\x01\x01\x01a\x05UInt8\x07"
    assert native_for(SqlResult(data, "Native"), 0) == data
    assert native_for(SqlResult(data, "CSV"), 54460) == data
    assert (
        native_for(SqlResult(data, "Native"), 54405) == b"\x01\x00\x02\xff\xff\xff\xff\x00" + data
    )
    q = parse_request({"query": "SELECT 1", "client_protocol_version": "54460"}, b"", DB)
    assert q.revision == 54460
    with pytest.raises(ClickHouseHttpError, match="whole number"):
        parse_request({"query": "SELECT 1", "client_protocol_version": "x"}, b"", DB)
    with pytest.raises(ClickHouseHttpError, match="cast it in the query") as err:
        native_for(SqlResult(b"\x01\x01\x01j\x04JSON{}", "Native"), 54460)
    assert err.value.status == 400
