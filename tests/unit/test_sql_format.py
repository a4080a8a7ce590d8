"""Choosing the output format of an analyst's query: the SQL's own clause, or one asked apart."""

from __future__ import annotations

import pytest

from connectors.analyst_sql import ast_format, choose_format
from schemas.errors import ConnectorError

# What the engine prints for: SHOW TABLES FROM flexstream FORMAT CSV
SHOW_WITH_FORMAT = "ShowTables (children 2)\n Identifier flexstream\n Identifier CSV\n"
# ... and for: SELECT x FORMAT Pretty (a bare name deeper in the tree is no format)
SELECT_WITH_FORMAT = (
    "SelectWithUnionQuery (children 2)\n ExpressionList (children 1)\n"
    "  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Identifier x\n"
    " Identifier Pretty\n"
)


def test_the_format_is_the_roots_last_bare_name():
    assert ast_format(SHOW_WITH_FORMAT) == "CSV"
    assert ast_format(SELECT_WITH_FORMAT) == "Pretty"
    assert ast_format("SelectWithUnionQuery\n ExpressionList\n  Identifier x\n") is None


def test_choose_format():
    assert choose_format(None, None) == "JSONCompact"
    assert choose_format(None, "csv") == "CSV"
    assert choose_format("csvwithnames", None) == "CSVWithNames"
    assert choose_format("Parquet", "parquet") == "Parquet"
    assert choose_format("Native", None) == "Native"  # what ClickHouse clients read
    with pytest.raises(ConnectorError, match="FORMAT Protobuf in the SQL is not offered"):
        choose_format("Protobuf", None)  # reads a schema file
    with pytest.raises(ConnectorError, match="asks for FORMAT CSV but format 'JSON'"):
        choose_format("CSV", "JSON")
    with pytest.raises(ConnectorError, match="is not offered"):
        choose_format(None, "Template")
