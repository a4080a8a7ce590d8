"""The history store: ClickHouse through clickhouse-connect.

By default the embedded engine (chdb) keeps its data on disk under the data
folder; ``CLICKHOUSE_URL`` points at any ClickHouse server instead. The embedded
engine admits one process per data folder: the worker owns it while it runs,
and other processes reach the data through the worker (see
:mod:`streams.sql.access`). Analysts' SQL never runs on this module's client:
see :mod:`connectors.analyst_sql`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import clickhouse_connect

from schemas.errors import ConnectorError

if TYPE_CHECKING:
    from schemas.beliefs import Sensor

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def identifier(name: str) -> str:
    """``name`` (the database from settings), checked to be a plain identifier.

    Values reach the engine as bound parameters; a name of a database or table
    cannot, so it is written into the SQL text, and only after this check
    (letters, digits and underscores, not starting with a digit).
    """
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ConnectorError(
            f"CLICKHOUSE_DATABASE {name!r} is not a plain identifier; use letters, "
            "digits and underscores"
        )
    return name


def in_list(name: str, values: Iterable[str]) -> tuple[str, dict[str, str]]:
    """``({name0:String}, {name1:String}, ...)`` and its parameters: a bound ``IN`` list."""
    params = {f"{name}{i}": v for i, v in enumerate(values)}
    return "(" + ", ".join("{" + p + ":String}" for p in params) + ")", params


def ddl_statements(database: str) -> list[str]:
    """The project's DDL (``infra/clickhouse.sql``) for ``database``, one statement each."""
    identifier(database)
    text = resources.files("infra").joinpath("clickhouse.sql").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    # A statement ends with a semicolon at the end of a line (comments may hold others).
    parts = re.split(r";[ \t]*(?:\n|$)", text)
    return [s.strip().replace("{db}", database) for s in parts if s.strip()]


#: Partitions (months) one insert into ``beliefs`` may touch; the engine's limit is 100.
MONTHS_PER_INSERT = 48


def split_by_months(table: Any, max_months: int) -> list[Any]:
    """Split a beliefs table into tables whose event starts span ``max_months`` months each."""
    import numpy as np

    starts = table.column("event_start").to_numpy().astype("datetime64[us]")
    months = starts.astype("datetime64[M]").astype(np.int64)
    distinct = np.unique(months)
    if len(distinct) <= max_months:
        return [table]
    order = np.argsort(months, kind="stable")
    bounds = distinct[::max_months]
    cuts = np.searchsorted(months[order], bounds[1:], side="left")
    return [table.take(idx) for idx in np.split(order, cuts)]


class Store:
    """One ClickHouse client with the project's tables; thread-safe by a lock."""

    def __init__(self, client: Any, database: str, embedded: bool) -> None:
        self.client = client
        self.database = identifier(database)
        self.embedded = embedded
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, url: str | None, database: str, data_dir: Path, *, read_only: bool = False
    ) -> Store:
        """Open the server at ``url``, or the embedded engine under ``data_dir/clickhouse``.

        ``read_only``: only read the tables a writer created (no schema changes);
        for a worker that reads the history another worker writes.
        """
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
        if not read_only:
            store.ensure_schema()
        return store

    def ensure_schema(self) -> None:
        """Create the database, tables and views that do not exist yet."""
        with self._lock:
            for stmt in ddl_statements(self.database):
                self.client.command(stmt)

    def insert_beliefs(self, table: Any) -> int:
        """Insert a pyarrow table of beliefs (columns as :meth:`BeliefColumns.to_arrow`).

        The table is partitioned by month of the event start, and the engine
        refuses an insert touching more than ``max_partitions_per_insert_block``
        (100) partitions: a long series is written in chunks of at most
        :data:`MONTHS_PER_INSERT` months, so no valid batch can stall the writer.
        """
        if table.num_rows == 0:
            return 0
        with self._lock:
            for chunk in split_by_months(table, MONTHS_PER_INSERT):
                self.client.insert_arrow(f"{self.database}.beliefs", chunk)
        return table.num_rows

    def ping(self) -> bool:
        """True when the store answers a trivial query."""
        try:
            with self._lock:
                self.client.query("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means "does not answer"
            return False
        return True

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

    def upsert_forecasters(self, forecasters: Iterable[Any]) -> None:
        """Record forecaster definitions (a newer row replaces an older one of the same name)."""
        rows = [[f.name, f.sensor, f.model_dump_json(by_alias=True)] for f in forecasters]
        if rows:
            with self._lock:
                self.client.insert(
                    f"{self.database}.forecasters", rows, column_names=["name", "sensor", "body"]
                )

    def insert_forecast_scores(self, rows: list[list[Any]], columns: list[str]) -> None:
        """Append rows of forecast scores (see the ``forecast_scores`` table)."""
        if rows:
            with self._lock:
                self.client.insert(f"{self.database}.forecast_scores", rows, column_names=columns)

    def forget(self, table: str, names: Iterable[str]) -> None:
        """Remove deleted entries (``table``: "sensors", "assets", "forecasters") from their mirror.

        The rows go (a lightweight DELETE) rather than being marked: readers of
        the mirror (``sensors FINAL``) then need no filter.
        """
        if table not in ("sensors", "assets", "forecasters"):
            raise ValueError(f"no mirror table {table!r}")
        names = sorted(set(names))
        if names:
            with self._lock:
                self.client.command(
                    f"DELETE FROM {self.database}.{table} WHERE name IN {{names:Array(String)}}",
                    parameters={"names": names},
                )

    def _purge(self, column: str, value: str) -> int:
        """Delete the beliefs whose ``column`` ("sensor" or "source") is ``value``; count them."""
        params = {"value": value}
        where = f"WHERE {column} = {{value:String}}"
        n = self.client.query(
            f"SELECT count() FROM {self.database}.beliefs {where}", parameters=params
        ).result_rows[0][0]
        if n:
            self.client.command(f"DELETE FROM {self.database}.beliefs {where}", parameters=params)
        return int(n)

    def purge_beliefs(self, sensor: str) -> int:
        """Delete every belief of ``sensor``; returns how many rows there were."""
        with self._lock:
            return self._purge("sensor", sensor)

    def purge_forecasts(self, source: str) -> int:
        """Delete every belief of forecaster ``source`` and its scores; returns the beliefs."""
        with self._lock:
            n = self._purge("source", source)
            self.client.command(
                f"DELETE FROM {self.database}.forecast_scores WHERE source = {{source:String}}",
                parameters={"source": source},
            )
        return n

    def add_sources(self, names: Iterable[str]) -> None:
        """Record source names (duplicates collapse)."""
        rows = [[n] for n in names]
        if rows:
            with self._lock:
                self.client.insert(f"{self.database}.sources", rows, column_names=["name"])

    def raw(
        self, sql: str, fmt: str = "JSONCompact", parameters: Mapping[str, Any] | None = None
    ) -> bytes:
        """Run the project's own ``sql`` and return the result in ClickHouse format ``fmt``.

        ``parameters`` are the values of the SQL's ``{name:Type}`` placeholders.

        For trusted SQL of the worker's features only: it runs on the writer's
        client, unchecked. Analysts' SQL goes through
        :class:`connectors.analyst_sql.AnalystSql`, on read-only clients of its own.
        """
        with self._lock:
            return self.client.raw_query(sql, parameters=parameters, fmt=fmt)

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
