"""The history store: ClickHouse through clickhouse-connect.

By default the embedded engine (chdb) keeps its data on disk under the data
folder; ``CLICKHOUSE_URL`` points at any ClickHouse server instead. The embedded
engine admits one process per data folder: the worker owns it while it runs,
and other processes reach the data through the worker (see
:mod:`streams.sqlaccess`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import clickhouse_connect

from schemas.beliefs import Sensor
from schemas.errors import ConnectorError

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ddl_statements(database: str) -> list[str]:
    """The project's DDL (``infra/clickhouse.sql``) for ``database``, one statement each."""
    if not _IDENT.match(database):
        raise ConnectorError(
            f"CLICKHOUSE_DATABASE {database!r} is not a plain identifier; use letters, "
            "digits and underscores"
        )
    text = resources.files("infra").joinpath("clickhouse.sql").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    # A statement ends with a semicolon at the end of a line (comments may hold others).
    parts = re.split(r";[ \t]*(?:\n|$)", text)
    return [s.strip().replace("{db}", database) for s in parts if s.strip()]


_READING = re.compile(r"^(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.IGNORECASE)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)


def check_read_only(sql: str) -> None:
    """Refuse anything but one reading statement (a trailing semicolon is fine)."""
    text = _COMMENTS.sub(" ", sql).strip().rstrip(";").strip()
    if not _READING.match(text) or ";" in _strip_strings(text):
        raise ConnectorError(
            "only one reading statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS) may "
            "run here: the history is written by the worker alone"
        )


def _strip_strings(text: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)


class Store:
    """One ClickHouse client with the project's tables; thread-safe by a lock."""

    def __init__(self, client: Any, database: str, embedded: bool) -> None:
        self.client = client
        self.database = database
        self.embedded = embedded
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str | None, database: str, data_dir: Path) -> Store:
        """Open the server at ``url``, or the embedded engine under ``data_dir/clickhouse``."""
        try:
            if url:
                client = clickhouse_connect.get_client(dsn=url, tz_mode="schema")
                embedded = False
            else:
                path = (Path(data_dir) / "clickhouse").resolve()
                path.mkdir(parents=True, exist_ok=True)
                client = clickhouse_connect.get_client(dsn=f"chdb://{path}", tz_mode="schema")
                embedded = True
        except Exception as exc:  # noqa: BLE001 - chdb and http clients raise many kinds
            where = url and "CLICKHOUSE_URL" or f"the embedded engine in {data_dir}/clickhouse"
            hint = (
                "another process (a running 'flexstream worker'?) holds this data folder; "
                "stop it, or query through it with 'flexstream sql'"
                if not url
                else "check the URL, the credentials and that the server is up"
            )
            raise ConnectorError(f"cannot open {where}: {exc}; {hint}") from None
        store = cls(client, database, embedded)
        store.ensure_schema()
        return store

    def ensure_schema(self) -> None:
        """Create the database, tables and views that do not exist yet."""
        with self._lock:
            for stmt in ddl_statements(self.database):
                self.client.command(stmt)

    def insert_beliefs(self, table: Any) -> int:
        """Insert a pyarrow table of beliefs (columns as :meth:`BeliefColumns.to_arrow`)."""
        if table.num_rows == 0:
            return 0
        with self._lock:
            self.client.insert_arrow(f"{self.database}.beliefs", table)
        return table.num_rows

    def upsert_sensors(self, sensors: Iterable[Sensor]) -> None:
        """Record the sensors (a newer row replaces an older one of the same name)."""
        rows = [
            [
                s.name,
                s.unit,
                int(s.event_resolution.total_seconds()),
                s.timezone,
                s.off_grid,
                s.description,
            ]
            for s in sensors
        ]
        if not rows:
            return
        with self._lock:
            self.client.insert(
                f"{self.database}.sensors",
                rows,
                column_names=[
                    "name",
                    "unit",
                    "event_resolution",
                    "timezone",
                    "off_grid",
                    "description",
                ],
            )

    def upsert_assets(self, assets: Iterable[Any]) -> None:
        """Record asset definitions (a newer row replaces an older one of the same name)."""
        rows = [[a.name, a.parent, a.devices, a.model_dump_json(by_alias=True)] for a in assets]
        if rows:
            with self._lock:
                self.client.insert(
                    f"{self.database}.assets",
                    rows,
                    column_names=["name", "parent", "devices", "body"],
                )

    def add_sources(self, names: Iterable[str]) -> None:
        """Record source names (duplicates collapse)."""
        rows = [[n] for n in names]
        if rows:
            with self._lock:
                self.client.insert(f"{self.database}.sources", rows, column_names=["name"])

    def raw(self, sql: str, fmt: str = "JSONCompact", readonly: bool = True) -> bytes:
        """Run ``sql`` and return the result in ClickHouse format ``fmt``.

        Read-only by default, as analysts' queries should be: one statement of a
        reading kind (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS). The check is
        on the statement, not a ``readonly`` setting: the embedded engine keeps
        settings for its whole session, which would stop the worker's own writes.
        """
        if readonly:
            check_read_only(sql)
        with self._lock:
            return self.client.raw_query(sql, fmt=fmt)

    def rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple]:
        """Run ``sql`` and return its rows."""
        with self._lock:
            return self.client.query(sql, parameters=parameters).result_rows

    def df(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """Run ``sql`` and return a pandas DataFrame."""
        with self._lock:
            return self.client.query_df(sql, parameters=parameters)

    def close(self) -> None:
        """Close the client (releases the embedded engine's data folder)."""
        with self._lock:
            try:
                self.client.close()
            except Exception:  # noqa: BLE001 - closing twice is harmless
                pass
