"""Analysts' SQL: refused unless it is one reading statement, run apart from the writer.

Analysts send SQL text; the worker writes the history. The text passes three
gates, each enforced by the engine itself rather than by pattern matching:

1. The engine's classifier (chdb parses the text without running it) must
   find exactly one statement, of the read-only class. Writes (INSERT, also
   after WITH), DDL (CREATE, DROP, TRUNCATE, ALTER, RENAME), OPTIMIZE, SYSTEM,
   KILL, SET, USE, INTO OUTFILE and INSERT INTO FUNCTION are refused here, as
   is any second statement.
2. The parsed tree (``EXPLAIN AST``) must call none of :data:`DENIED_FUNCTIONS`
   (or a name starting with one of :data:`DENIED_PREFIXES`): functions that
   reach outside the database, such as local files, URLs, object stores, other
   servers, programs, the host process or an LLM provider.
3. The statement runs on a client of its own whose session is ``readonly=1``
   with a time limit and result limits (set last, after it no setting may
   change), on threads of its own: a slow query never waits for, nor delays,
   the worker's writes. A client whose query failed is closed and replaced, so
   nothing it left behind reaches the next caller.

The output format is one of :data:`FORMATS`: either the statement's own
``FORMAT`` clause (found in the engine's parsed tree, run as written) or one
asked for apart, appended by us after the checks (JSONCompact when neither).
Both at once must agree.

Queries run in the project's database (``CLICKHOUSE_DATABASE``): its tables
need no ``flexstream.`` prefix.

Values travel apart from the text as query parameters: the statement names
them as ``{name:Type}`` and the engine binds them (``parameters``, checked by
:func:`check_parameters`), so a value never becomes SQL.
"""

from __future__ import annotations

import asyncio
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.settings import Settings
from schemas.errors import ConnectorError

#: Output formats an analyst may ask for, by lower-case name. Text formats for
#: people and scripts, Parquet and Arrow for data frames, Native and RowBinary
#: for ClickHouse clients; none of them reads a schema or template file.
FORMATS: dict[str, str] = {
    name.lower(): name
    for name in (
        "JSONCompact",
        "JSON",
        "JSONStrings",
        "JSONEachRow",
        "JSONCompactEachRow",
        "JSONCompactEachRowWithNamesAndTypes",
        "CSV",
        "CSVWithNames",
        "CSVWithNamesAndTypes",
        "TabSeparated",
        "TabSeparatedWithNames",
        "TabSeparatedWithNamesAndTypes",
        "TabSeparatedRaw",
        "TSV",
        "TSVWithNames",
        "TSVWithNamesAndTypes",
        "Values",
        "Native",
        "RowBinary",
        "RowBinaryWithNames",
        "RowBinaryWithNamesAndTypes",
        "ArrowStream",
        "ORC",
        "Pretty",
        "PrettyCompact",
        "PrettyCompactMonoBlock",
        "Markdown",
        "Vertical",
        "Parquet",
        "Arrow",
    )
}

#: Functions (scalar and table functions, lower case) that reach outside the
#: database: files and directories, URLs and object stores, other servers and
#: databases, programs, objects of the host process, LLM providers, Keeper.
DENIED_FUNCTIONS: frozenset[str] = frozenset(
    name.lower()
    for name in (
        "file",
        "fileCluster",
        "filesystem",
        "url",
        "urlCluster",
        "s3",
        "s3Cluster",
        "gcs",
        "oss",
        "cosn",
        "azureBlobStorage",
        "azureBlobStorageCluster",
        "hdfs",
        "hdfsCluster",
        "remote",
        "remoteSecure",
        "cluster",
        "clusterAllReplicas",
        "executable",
        "executablePool",
        "mysql",
        "postgresql",
        "jdbc",
        "odbc",
        "sqlite",
        "mongodb",
        "redis",
        "bigquery",
        "ytsaurus",
        "arrowFlight",
        "arrowstream",
        "python",
        "input",
        "eval",
        "hasColumnInTable",
        "catboostEvaluate",
        "generateSerialID",
    )
)

#: Name prefixes (lower case) of function families denied as a whole: data
#: lakes, remote Prometheus queries and LLM calls.
DENIED_PREFIXES: tuple[str, ...] = ("iceberg", "deltalake", "hudi", "paimon", "prometheus", "ai")

#: Response headers of the worker's query endpoint: the result's format, and
#: whether the SQL named it ("True"/"False").
FORMAT_HEADER = "X-ClickHouse-Format"
OWN_FORMAT_HEADER = "X-FlexStream-Own-Format"

#: The format of a statement that names none, when none is asked for apart.
DEFAULT_FORMAT = "JSONCompact"

READ_ONLY = "READ_ONLY"

_AST_FUNCTION = re.compile(r"^\s*Function\s+(\S+)", re.MULTILINE)
#: A child of the tree's root that is a bare name: where ``EXPLAIN AST`` shows
#: the statement's FORMAT (after the query, and after ``FROM db`` of SHOW).
_AST_TOP_IDENTIFIER = re.compile(r"^ Identifier\s+(\S+)\s*$", re.MULTILINE)

_CLASSES = {
    "MUTATING": "it writes (INSERT, CREATE, DROP, ALTER, TRUNCATE, RENAME, OPTIMIZE, ...)",
    "MUTATING_GLOBAL": "it changes the server (users, grants, ...)",
    "CONTROL": "it is a control statement (INTO OUTFILE, INSERT INTO FUNCTION, SET, USE, KILL, "
    "SYSTEM, BACKUP, ...)",
    "UNKNOWN": "the engine cannot tell what it does",
}

_ONE_STATEMENT = (
    "only one reading statement (SELECT, WITH ... SELECT, SHOW, DESCRIBE, EXPLAIN, EXISTS) "
    "may run here: the history is written by the worker alone"
)


def check_format(fmt: str) -> str:
    """The ClickHouse name of output format ``fmt`` (any case); refuse any other."""
    name = FORMATS.get(str(fmt).strip().lower())
    if name is None:
        raise ConnectorError(
            f"refused: format {fmt!r} is not offered; use one of {', '.join(FORMATS.values())}"
        )
    return name


def ast_format(explain_ast: str) -> str | None:
    """The name in the FORMAT clause of the statement whose ``EXPLAIN AST`` this is, if any.

    The engine shows the clause as the root's last bare-name child. Some
    statements hold other bare names there (``SHOW TABLES FROM db``), so this
    is read only once the parser confirmed the statement ends in a FORMAT
    clause (see :meth:`AnalystSql.check`).
    """
    names = _AST_TOP_IDENTIFIER.findall(explain_ast)
    return names[-1] if names else None


def choose_format(own: str | None, asked: str | None) -> str:
    """The ClickHouse name of the output format: the SQL's ``own``, the one ``asked`` apart.

    Refuses a format not on :data:`FORMATS`, and two formats that differ.
    """
    if own is None:
        return check_format(asked if asked is not None else DEFAULT_FORMAT)
    if str(own).strip().lower() not in FORMATS:
        raise ConnectorError(
            f"refused: FORMAT {own} in the SQL is not offered; use one of "
            f"{', '.join(FORMATS.values())}"
        )
    name = FORMATS[own.strip().lower()]
    if asked is not None and check_format(asked) != name:
        raise ConnectorError(
            f"refused: the SQL asks for FORMAT {name} but format {asked!r} was asked apart; "
            "name the format once, in the SQL or apart"
        )
    return name


@dataclass(frozen=True)
class SqlResult:
    """An analyst query's output: the bytes, their format, and whether the SQL named it."""

    data: bytes
    format: str
    own_format: bool = False


_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: Types a query parameter's value may have (the engine parses it as the
#: placeholder's type).
ParameterValue = str | int | float


def check_parameters(
    sql: str, parameters: Mapping[str, Any] | None
) -> dict[str, ParameterValue] | None:
    """``parameters`` once each is a name used as ``{name:Type}`` in ``sql`` with a plain value.

    None when there are none. Anything else is refused: names that are not
    identifiers, values other than strings and numbers, and a name the
    statement does not use as a placeholder (only the engine binds values).
    """
    if not parameters:
        return None
    if not isinstance(parameters, Mapping):
        raise ConnectorError("refused: parameters must be an object of names and values")
    out: dict[str, ParameterValue] = {}
    for name, value in parameters.items():
        if not isinstance(name, str) or not _PARAMETER_NAME.match(name):
            raise ConnectorError(f"refused: parameter name {name!r} is not an identifier")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConnectorError(
                f"refused: parameter {name} must be a string or a number, not "
                f"{type(value).__name__}"
            )
        if "{" + name + ":" not in sql:
            raise ConnectorError(
                f"refused: parameter {name} is not used in the SQL; write it as {{{name}:Type}}"
            )
        out[name] = value
    return out


def _raw(client: Any, sql: str, parameters: Mapping[str, ParameterValue] | None) -> bytes:
    """``client.raw_query``, with the engine binding ``parameters`` when there are any."""
    if parameters:
        return client.raw_query(sql, parameters=parameters)
    return client.raw_query(sql)


def statement_text(sql: str) -> str:
    """``sql`` without surrounding blanks and trailing semicolons."""
    text = sql.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def check_classification(info: Mapping[str, Any], hint: str = "") -> None:
    """Refuse unless the classifier's ``info`` describes one read-only statement."""
    count = int(info.get("statement_count", 0))
    kind = getattr(info.get("query_class"), "name", str(info.get("query_class")))
    if count == 1 and kind == READ_ONLY:
        return
    if count == 0:
        found = "the engine cannot parse it"
    elif count > 1:
        found = f"it holds {count} statements; send them one at a time"
    else:
        found = _CLASSES.get(kind, f"it is of the class {kind}")
    raise ConnectorError(f"refused: {_ONE_STATEMENT}; {found}{hint}")


def ast_functions(explain_ast: str) -> list[str]:
    """Names of the functions called in the engine's ``EXPLAIN AST`` output, in order."""
    return _AST_FUNCTION.findall(explain_ast)


def denied(names: Iterable[str]) -> list[str]:
    """Those of ``names`` that analysts may not call (each once, as written)."""
    out: list[str] = []
    for name in names:
        low = name.lower()
        if (low in DENIED_FUNCTIONS or low.startswith(DENIED_PREFIXES)) and name not in out:
            out.append(name)
    return out


def check_functions(explain_ast: str) -> None:
    """Refuse a statement whose tree calls a denied function."""
    bad = denied(ast_functions(explain_ast))
    if bad:
        raise ConnectorError(
            f"refused: {', '.join(bad)} cannot be called here: such functions reach outside "
            "the history (files, URLs, other servers, programs); query the project's tables"
        )


@dataclass(frozen=True)
class SqlLimits:
    """What one analyst query may use."""

    time_limit: float = 30.0
    max_result_rows: int = 1_000_000
    max_result_bytes: int = 500_000_000
    max_threads: int = 2

    @classmethod
    def from_settings(cls, settings: Settings) -> SqlLimits:
        """The limits configured in the worker settings."""
        w = settings.worker
        return cls(
            w.sql_time_limit, w.sql_max_result_rows, w.sql_max_result_bytes, w.sql_max_threads
        )

    def client_settings(self) -> dict[str, Any]:
        """Session settings of a read-only client; ``readonly`` last, so it locks the rest."""
        settings: dict[str, Any] = {
            "max_execution_time": self.time_limit,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
        }
        if self.max_threads > 0:
            settings["max_threads"] = self.max_threads
        settings["readonly"] = 1
        return settings


def engine_path(data_dir: Path) -> Path:
    """Where the embedded engine keeps its data under ``data_dir``."""
    return (Path(data_dir) / "clickhouse").resolve()


class AnalystSql:
    """Analysts' queries: the gates, then a pool of read-only clients on threads of their own.

    ``connect`` opens one read-only client; ``classify`` is the engine's
    classifier (text, database -> dict); ``close_classifier`` releases it.
    """

    def __init__(
        self,
        connect: Callable[[], Any],
        classify: Callable[[str, str], Mapping[str, Any]],
        database: str,
        threads: int = 2,
        close_classifier: Callable[[], None] | None = None,
    ) -> None:
        self.database = database
        self._connect = connect
        self._classify = classify
        self._close_classifier = close_classifier
        self._classify_lock = threading.Lock()
        threads = max(1, threads)
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        for _ in range(threads):
            self._idle.put(None)  # a client is opened on first use
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="analyst-sql")
        self._closed = False

    @classmethod
    def open(
        cls,
        url: str | None,
        database: str,
        data_dir: Path,
        limits: SqlLimits,
        threads: int = 2,
    ) -> AnalystSql:
        """Read-only access to the server at ``url``, or to the embedded engine of ``data_dir``.

        The classifier is chdb's: on the embedded engine's own folder, or in
        memory when the history lives on a server (no embedded engine is open then).
        """
        import clickhouse_connect  # here: the worker's SQL path needs no client library
        from chdb import _chdb

        settings = limits.client_settings()
        if url:
            dsn, where = url, ":memory:"
        else:
            path = engine_path(data_dir)
            dsn, where = f"chdb://{path}", str(path)

        def connect() -> Any:
            return clickhouse_connect.get_client(
                dsn=dsn, database=database, tz_mode="schema", settings=settings
            )

        try:
            engine = _chdb.connect(where)
        except Exception as exc:  # noqa: BLE001 - chdb raises several kinds
            raise ConnectorError(f"cannot open the query classifier on {where}: {exc}") from None
        return cls(connect, engine.classify_query, database, threads, engine.close)

    def check(
        self,
        client: Any,
        sql: str,
        fmt: str | None = None,
        parameters: Mapping[str, ParameterValue] | None = None,
        default: str = DEFAULT_FORMAT,
    ) -> tuple[str, str, bool]:
        """Statement, format name and whether the SQL named it, once ``sql`` passed every gate.

        ``fmt`` is a format asked for apart (None: the SQL's own, else
        ``default``). A statement that no longer parses once a
        FORMAT clause is appended already ends in one: the engine's tree names
        it, and the text runs exactly as it was classified, nothing appended.
        ``parameters`` (see :func:`check_parameters`) are bound for the tree too.
        """
        if fmt is not None:
            check_format(fmt)
        text = statement_text(sql)
        with self._classify_lock:
            first = self._classify(text, self.database)
        check_classification(first)
        tree = _raw(client, f"EXPLAIN AST {text}", parameters).decode(errors="replace")
        check_functions(tree)
        name = choose_format(None, fmt if fmt is not None else default)
        query = f"{text}\nFORMAT {name}"
        with self._classify_lock:
            final = self._classify(query, self.database)
        own = ast_format(tree) if int(final.get("statement_count", 0)) == 0 else None
        if own is not None:
            return text, choose_format(own, fmt), True
        check_classification(final, hint=" once a FORMAT clause is added")
        return query, name, False

    def execute(
        self,
        sql: str,
        fmt: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        default: str = DEFAULT_FORMAT,
    ) -> SqlResult:
        """Check and run ``sql``; its result and format (blocks the calling thread).

        ``parameters`` are the values of the statement's ``{name:Type}`` placeholders;
        ``default`` is the format when neither the SQL nor ``fmt`` names one.
        """
        if self._closed:
            raise ConnectorError("the analysts' query runner is closed")
        bound = check_parameters(sql, parameters)
        client = self._idle.get()
        try:
            if client is None:
                client = self._connect()
            query, name, own = self.check(client, sql, fmt, bound, default)
            return SqlResult(_raw(client, query, bound), name, own)
        except ConnectorError:
            raise
        except Exception as exc:  # noqa: BLE001 - the engine's message goes to the analyst
            self._discard(client)
            client = None
            raise ConnectorError(str(exc)) from None
        finally:
            if self._closed:
                self._discard(client)
            else:
                self._idle.put(client)

    def run(self, sql: str, fmt: str | None = None) -> bytes:
        """Check and run ``sql``; its result in format ``fmt`` (blocks the calling thread)."""
        return self.execute(sql, fmt).data

    async def execute_async(
        self,
        sql: str,
        fmt: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        default: str = DEFAULT_FORMAT,
    ) -> SqlResult:
        """:meth:`execute` on the runner's own threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, self.execute, sql, fmt, parameters, default
        )

    async def run_async(self, sql: str, fmt: str | None = None) -> bytes:
        """:meth:`run` on the runner's own threads."""
        return (await self.execute_async(sql, fmt)).data

    @staticmethod
    def _discard(client: Any) -> None:
        """Close ``client`` (a failed query may have left output in its session)."""
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken client is best effort
                pass

    def close(self) -> None:
        """Close every client and the classifier (releases the embedded engine's folder)."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        while not self._idle.empty():
            self._discard(self._idle.get_nowait())
        if self._close_classifier is not None:
            self._close_classifier()


def open_analyst_sql(settings: Settings) -> AnalystSql:
    """The analysts' runner as configured in ``settings``."""
    url = settings.clickhouse.url.get_secret_value() if settings.clickhouse.url else None
    return AnalystSql.open(
        url,
        settings.clickhouse.database,
        settings.paths.root,
        SqlLimits.from_settings(settings),
        settings.worker.sql_threads,
    )
