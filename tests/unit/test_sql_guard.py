"""The pure parts of the analysts' SQL gates: formats, classifier verdicts, AST functions, auth."""

from __future__ import annotations

import enum
import stat

import pytest

from connectors.analyst_sql import (
    AnalystSql,
    SqlLimits,
    ast_functions,
    check_classification,
    check_format,
    check_functions,
    denied,
    statement_text,
)
from schemas.errors import ConnectorError
from streams.sql import auth as sql_auth

# What the engine prints for:
#   SELECT FiLe('/etc/passwd') AS x, "Function url", a.b FROM numbers(3) AS a
#   WHERE x IN (SELECT 1 FROM url('http://x', CSV)) AND s = 'x\nFunction s3'
EXPLAIN_AST = """\
SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 3)
   ExpressionList (children 3)
    Function FiLe (alias x) (children 1)
     ExpressionList (children 1)
      Literal '/etc/passwd'
    Identifier Function url
    Identifier a.b
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function numbers (alias a) (children 1)
       ExpressionList (children 1)
        Literal UInt64_3
   Function and (children 1)
    ExpressionList (children 2)
     Function in (children 1)
      ExpressionList (children 2)
       Identifier x
       Subquery (children 1)
        SelectWithUnionQuery (children 1)
         ExpressionList (children 1)
          SelectQuery (children 2)
           ExpressionList (children 1)
            Literal UInt64_1
           TablesInSelectQuery (children 1)
            TablesInSelectQueryElement (children 1)
             TableExpression (children 1)
              Function url (children 1)
               ExpressionList (children 2)
                Literal 'http://x'
                Identifier CSV
     Function equals (children 1)
      ExpressionList (children 2)
       Identifier s
       Literal 'x\\\\nFunction s3'
"""


class QueryClass(enum.Enum):
    """Stands in for the engine's ``query_class`` enum (only ``.name`` is read)."""

    READ_ONLY = 0
    MUTATING = 1
    MUTATING_GLOBAL = 2
    CONTROL = 3
    UNKNOWN = 4


def test_formats_come_from_the_allow_list_in_any_case():
    assert check_format("jsoncompact") == "JSONCompact"
    assert check_format(" CSVWithNames ") == "CSVWithNames"
    assert check_format("parquet") == "Parquet"
    assert check_format("native") == "Native"
    for bad in ("JSON; DROP TABLE x", "JSON\nSELECT 2", "Template", "CapnProto", "", "Protobuf"):
        with pytest.raises(ConnectorError, match="is not offered; use one of JSONCompact"):
            check_format(bad)


def test_functions_are_read_from_the_tree_not_from_strings_or_names():
    assert ast_functions(EXPLAIN_AST) == ["FiLe", "numbers", "and", "in", "url", "equals"]
    assert denied(ast_functions(EXPLAIN_AST)) == ["FiLe", "url"]
    with pytest.raises(ConnectorError, match=r"refused: FiLe, url cannot be called here"):
        check_functions(EXPLAIN_AST)


def test_deny_list_is_case_blind_and_covers_families():
    names = ["icebergS3", "DeltaLakeCluster", "hudi", "paimonLocal", "aiGenerate", "AIFilter"]
    assert denied(names) == names
    assert denied(["REMOTE", "remoteSecure", "Python", "executable", "filesystem", "eval"]) == [
        "REMOTE",
        "remoteSecure",
        "Python",
        "executable",
        "filesystem",
        "eval",
    ]
    harmless = ["numbers", "count", "sum", "toStartOfHour", "view", "merge", "format", "avg"]
    assert denied(harmless) == []
    check_functions("SelectQuery\n Function count (children 1)\n")


@pytest.mark.parametrize(
    ("info", "match"),
    [
        ({"query_class": QueryClass.MUTATING, "statement_count": 2}, "holds 2 statements"),
        ({"query_class": QueryClass.MUTATING, "statement_count": 1}, "it writes"),
        ({"query_class": QueryClass.CONTROL, "statement_count": 1}, "INTO OUTFILE"),
        ({"query_class": QueryClass.MUTATING_GLOBAL, "statement_count": 1}, "changes the server"),
        ({"query_class": QueryClass.UNKNOWN, "statement_count": 0}, "cannot parse"),
        ({"query_class": QueryClass.READ_ONLY, "statement_count": 2}, "holds 2 statements"),
    ],
)
def test_only_one_read_only_statement_passes_the_classifier_check(info, match):
    check_classification({"query_class": QueryClass.READ_ONLY, "statement_count": 1})
    with pytest.raises(ConnectorError, match=f"only one reading statement.*{match}"):
        check_classification(info)


def test_statement_text_drops_blanks_and_trailing_semicolons():
    assert statement_text("  SELECT 1 ;; \n") == "SELECT 1"
    assert statement_text("SELECT ';'") == "SELECT ';'"


def test_readonly_is_the_last_session_setting():
    settings = SqlLimits(time_limit=5, max_result_rows=10, max_result_bytes=100).client_settings()
    assert list(settings)[-1] == "readonly" and settings["readonly"] == 1
    assert settings["max_execution_time"] == 5 and settings["result_overflow_mode"] == "throw"
    assert "max_threads" not in SqlLimits(max_threads=0).client_settings()


class FakeClient:
    """A client that fails queries containing 'boom' and keeps what a failure left behind."""

    opened = 0

    def __init__(self) -> None:
        FakeClient.opened += 1
        self.leftover = b""
        self.closed = False

    def raw_query(self, sql: str) -> bytes:
        assert not self.closed
        if sql.startswith("EXPLAIN AST"):
            return b"SelectQuery\n"
        if "boom" in sql:
            self.leftover = b"partial\n"
            raise RuntimeError("Code: 395. boom")
        out, self.leftover = self.leftover + b"good\n", b""
        return out

    def close(self) -> None:
        self.closed = True


def _read_only(_sql: str, _db: str) -> dict:
    return {"query_class": QueryClass.READ_ONLY, "statement_count": 1}


def test_a_client_whose_query_failed_is_replaced():
    FakeClient.opened = 0
    runner = AnalystSql(FakeClient, _read_only, "flexstream", threads=1)
    assert runner.run("SELECT 1", "CSV") == b"good\n"
    with pytest.raises(ConnectorError, match="boom"):
        runner.run("SELECT 'boom'", "CSV")
    assert runner.run("SELECT 1", "CSV") == b"good\n"  # nothing of the failure
    assert FakeClient.opened == 2
    runner.close()
    with pytest.raises(ConnectorError, match="closed"):
        runner.run("SELECT 1", "CSV")


def test_token_file_is_private_and_new_at_each_start(tmp_path):
    first = sql_auth.new_token(tmp_path)
    mode = stat.S_IMODE((tmp_path / sql_auth.TOKEN_FILE).stat().st_mode)
    assert mode == 0o600
    assert sql_auth.read_token(tmp_path) == first and len(first) >= 40
    second = sql_auth.new_token(tmp_path)
    assert second != first and sql_auth.read_token(tmp_path) == second
    assert sql_auth.read_token(tmp_path / "nowhere") is None


def test_requests_need_the_token_json_and_no_origin():
    ok = {"Authorization": "Bearer t0ken", "Content-Type": "application/json; charset=utf-8"}
    assert sql_auth.refusal(ok, "t0ken") is None
    assert sql_auth.refusal({**ok, "authorization": "bearer t0ken"}, "t0ken") is None
    assert sql_auth.refusal({**ok, "Origin": "http://evil.example"}, "t0ken")[0] == 403
    assert sql_auth.refusal({**ok, "Origin": "null"}, "t0ken")[0] == 403
    assert sql_auth.refusal({"Content-Type": "application/json"}, "t0ken")[0] == 401
    assert sql_auth.refusal({**ok, "Authorization": "Bearer wrong"}, "t0ken")[0] == 401
    assert sql_auth.refusal({**ok, "Authorization": "Bearer tøken"}, "t0ken")[0] == 401
    assert sql_auth.refusal({**ok, "Authorization": "Basic t0ken"}, "t0ken")[0] == 401
    assert sql_auth.refusal({**ok, "Content-Type": "text/plain"}, "t0ken")[0] == 415
