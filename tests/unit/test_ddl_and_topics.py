"""ClickHouse DDL splitting and substitution; the topic definitions shipped in infra/topics.yaml."""

from __future__ import annotations

import re

import pytest

from connectors import clickhouse
from connectors.clickhouse import ddl_statements
from connectors.kafka import topic_specs
from schemas.errors import ConnectorError


class _FakeFiles:
    """Stands in for ``importlib.resources`` so a test can hand its own SQL text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def files(self, package: str):
        assert package == "infra"
        return self

    def joinpath(self, name: str):
        assert name == "clickhouse.sql"
        return self

    def read_text(self) -> str:
        return self.text


def test_shipped_ddl_splits_into_its_statements():
    stmts = ddl_statements("flexstream")
    heads = [re.match(r"CREATE \w+ IF NOT EXISTS (\S+)", s).group(1) for s in stmts]
    assert heads[:7] == [
        "flexstream",
        "flexstream.beliefs",
        "flexstream.sensors",
        "flexstream.sources",
        "flexstream.latest_beliefs",
        "flexstream.latest_values",
        "flexstream.assets",
    ]
    assert len(heads) == len(set(heads))
    for s in stmts:
        assert "{db}" not in s
        assert not s.endswith(";")
        assert "--" not in s


def test_database_name_is_substituted_everywhere():
    stmts = ddl_statements("test_db_7")
    view = next(s for s in stmts if "latest_beliefs" in s)
    assert "FROM test_db_7.beliefs AS b FINAL" in view
    assert "flexstream" not in " ".join(stmts)


@pytest.mark.parametrize("bad", ["x; DROP TABLE y", "a-b", "1db", "", "db.name", "a b"])
def test_non_identifier_database_is_rejected(bad):
    with pytest.raises(ConnectorError) as info:
        ddl_statements(bad)
    assert "CLICKHOUSE_DATABASE" in str(info.value)


def test_semicolons_in_comments_and_mid_line_do_not_split(monkeypatch):
    sql = (
        "-- header; with a semicolon;\n"
        "CREATE TABLE {db}.a (x String DEFAULT 'a;b');\n"
        "  -- indented comment;\n"
        "CREATE VIEW {db}.v AS SELECT 1;   \n"
        "SELECT 2;"
    )
    monkeypatch.setattr(clickhouse, "resources", _FakeFiles(sql))
    assert ddl_statements("d") == [
        "CREATE TABLE d.a (x String DEFAULT 'a;b')",
        "CREATE VIEW d.v AS SELECT 1",
        "SELECT 2",
    ]


def test_every_topic_has_partitions_and_the_registry_is_compacted():
    specs = {s.name: s for s in topic_specs()}
    assert {"readings.meter", "readings.price", "dead-letters", "registry"} <= set(specs)
    for s in specs.values():
        assert isinstance(s.partitions, int) and s.partitions >= 1, s.name
        assert s.doc, s.name
        assert all(isinstance(v, str) for v in s.config.values()), s.name
    assert specs["registry"].config["cleanup.policy"] == "compact"
    assert specs["readings.meter"].partitions == 3
    assert specs["readings.meter"].config["retention.ms"] == "604800000"
    assert "cleanup.policy" not in specs["readings.meter"].config
