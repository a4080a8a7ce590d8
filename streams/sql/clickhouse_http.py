"""ClickHouse's HTTP interface, read-only, on the running worker: for standard clients.

While a worker runs, the embedded engine's folder is its alone, so clients such
as clickhouse-connect, Grafana's ClickHouse data source or DBeaver reach the
history through the worker: it speaks the part of ClickHouse's HTTP protocol
that reading needs, on 127.0.0.1 (``FLEXSTREAM_WORKER_CLICKHOUSE_PORT``).

What a request may carry, as ClickHouse reads it:

- the statement: the ``query`` URL parameter, the request body, or both (the
  parameter first, then a newline, then the body), as GET or POST;
- ``default_format`` (the output format when the statement names none;
  TabSeparated without it, as ClickHouse does), ``database`` (``default`` or
  the project's database: queries run in the project's database),
  ``query_id`` (echoed), ``param_<name>`` (values of ``{name:Type}``
  placeholders, bound by the engine), ``enable_http_compression=1``
  (gzip or deflate, as the client's ``Accept-Encoding`` allows) and
  ``client_protocol_version`` (Native results at that protocol revision, as
  clickhouse-go reads them: :mod:`streams.sql.native_revision`);
- the worker's token (the data folder's ``sql-token``) as the password of
  HTTP Basic auth (any user name), as ``X-ClickHouse-Key``, or as
  ``Authorization: Bearer``.

Other settings in the URL are not applied: the limits are the worker's. Every
statement passes the same gates as ``flexstream sql`` and runs on the same
read-only clients (:mod:`connectors.analyst_sql`), so a client cannot write,
read files or reach the network here either. ``/ping`` and ``/`` without a
query answer ``Ok.`` for health checks. Errors come as ClickHouse sends them:
an HTTP status, ``X-ClickHouse-Exception-Code`` and ``Code: N. DB::Exception: ...``.

:func:`parse_request`, :func:`authorized` and :func:`error_text` are pure; the
aiohttp server around them is :class:`ClickHouseInterface`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.analyst_sql import SqlResult
from schemas.errors import ConnectorError
from streams.sql.native_revision import UnsupportedType, at_revision

log = logging.getLogger("flexstream.sql.clickhouse")

#: ClickHouse's error codes used here.
UNKNOWN_DATABASE = 81
READONLY = 164
UNKNOWN_SETTING = 115
AUTHENTICATION_FAILED = 516
BAD_ARGUMENTS = 36
UNKNOWN_EXCEPTION = 1002

#: The output format of a statement that names none, when no default_format is sent.
HTTP_DEFAULT_FORMAT = "TabSeparated"

#: URL parameters read here; any other (a setting) is not applied.
_READ = {
    "query",
    "database",
    "default_format",
    "query_id",
    "enable_http_compression",
    "compress",
    "decompress",
    "client_protocol_version",
}

_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNames": "text/tab-separated-values; charset=UTF-8",
    "TabSeparatedWithNamesAndTypes": "text/tab-separated-values; charset=UTF-8",
    "CSV": "text/csv; charset=UTF-8; header=absent",
    "CSVWithNames": "text/csv; charset=UTF-8; header=present",
    "JSON": "application/json; charset=UTF-8",
    "JSONCompact": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}

_ENGINE_CODE = re.compile(r"Code:\s*(\d+)")


class ClickHouseHttpError(Exception):
    """A request answered with an error: HTTP status, ClickHouse code, message."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class QueryRequest:
    """One query as a client sent it, read from the URL, headers and body."""

    sql: str
    default_format: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    query_id: str = ""
    compress: bool = False
    #: The protocol revision the client decodes Native results with (0: the plain format).
    revision: int = 0
    #: URL parameters that were not applied (settings), for the log.
    ignored: tuple[str, ...] = ()


def parse_request(params: Mapping[str, str], body: bytes, database: str) -> QueryRequest:
    """The query of a request with URL ``params`` and ``body``, for the project ``database``.

    Raises :class:`ClickHouseHttpError` for what cannot be served: no query,
    another database, a body that is not UTF-8, or ClickHouse's own
    compression (``compress``/``decompress``), which is not offered.
    """
    for own in ("compress", "decompress"):
        if params.get(own, "0") not in ("", "0"):
            raise ClickHouseHttpError(
                400,
                BAD_ARGUMENTS,
                f"{own}=1 (ClickHouse's own compression) is not offered here; "
                "use enable_http_compression=1 with Accept-Encoding: gzip",
            )
    db = params.get("database", "")
    if db not in ("", "default", database):
        raise ClickHouseHttpError(
            404,
            UNKNOWN_DATABASE,
            f"database {db!r} is not here: the history is in {database!r} "
            "(connect with that database, or 'default')",
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ClickHouseHttpError(
            400, BAD_ARGUMENTS, "the request body is not UTF-8 text; send the SQL as text"
        ) from None
    head = params.get("query", "")
    sql = f"{head}\n{text}" if head and text.strip() else (head or text)
    if not sql.strip():
        raise ClickHouseHttpError(
            400, BAD_ARGUMENTS, "send a query: the 'query' URL parameter or the request body"
        )
    parameters = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
    try:
        revision = int(params.get("client_protocol_version") or 0)
    except ValueError:
        raise ClickHouseHttpError(
            400, BAD_ARGUMENTS, "client_protocol_version must be a whole number"
        ) from None
    ignored = tuple(sorted(k for k in params if k not in _READ and not k.startswith("param_")))
    return QueryRequest(
        sql=sql,
        default_format=params.get("default_format") or None,
        parameters=parameters,
        query_id=params.get("query_id") or str(uuid.uuid4()),
        compress=params.get("enable_http_compression", "0") == "1",
        revision=revision,
        ignored=ignored,
    )


def sent_password(headers: Mapping[str, str]) -> str | None:
    """The secret a request carries: Bearer token, Basic password or ``X-ClickHouse-Key``."""
    h = {k.lower(): v for k, v in headers.items()}
    scheme, _, value = h.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return h.get("x-clickhouse-key")


def authorized(headers: Mapping[str, str], token: str) -> None:
    """Raise :class:`ClickHouseHttpError` unless ``headers`` carry ``token`` and no ``Origin``.

    A browser adds ``Origin`` to cross-origin requests; none is served, so a web
    page cannot use a token it does not know through a user's browser either.
    """
    if any(k.lower() == "origin" for k in headers):
        raise ClickHouseHttpError(
            403,
            AUTHENTICATION_FAILED,
            "requests from web pages (with an Origin header) are refused",
        )
    sent = sent_password(headers)
    if sent is None or not hmac.compare_digest(sent.encode(), token.encode()):
        raise ClickHouseHttpError(
            401,
            AUTHENTICATION_FAILED,
            "send the worker's token (the file sql-token in its data folder) as the password "
            "(any user name), as X-ClickHouse-Key, or as 'Authorization: Bearer <token>'",
        )


def error_of(exc: ConnectorError) -> ClickHouseHttpError:
    """The HTTP answer to a refused or failed query (the engine's code when it gave one)."""
    message = str(exc)
    if message.startswith("refused"):
        return ClickHouseHttpError(403, READONLY, message)
    found = _ENGINE_CODE.search(message)
    return ClickHouseHttpError(400, int(found.group(1)) if found else UNKNOWN_EXCEPTION, message)


def error_text(code: int, message: str) -> str:
    """An error body as ClickHouse writes it (clients show it as the error's text)."""
    if message.lstrip().startswith("Code:"):
        return message.rstrip() + "\n"
    return f"Code: {code}. DB::Exception: {message.rstrip('.')}. (FLEXSTREAM)\n"


def native_for(result: SqlResult, revision: int) -> bytes:
    """The result's bytes; a Native result as a client of protocol ``revision`` reads it."""
    if result.format != "Native" or revision <= 0:
        return result.data
    try:
        return at_revision(result.data, revision)
    except UnsupportedType as exc:
        raise ClickHouseHttpError(
            400,
            BAD_ARGUMENTS,
            f"a column of type {exc} cannot be sent in the Native format at protocol revision "
            f"{revision} here; cast it in the query (e.g. toString(...))",
        ) from None


def content_type(fmt: str) -> str:
    """The Content-Type ClickHouse gives a result in format ``fmt``."""
    return _CONTENT_TYPES.get(fmt, "application/octet-stream")


#: Runs a checked query: (sql, format asked apart, parameters, fallback format) -> result.
Execute = Callable[[str, str | None, Mapping[str, Any] | None, str], Awaitable[SqlResult]]


class ClickHouseInterface:
    """The aiohttp server of the interface; ``execute`` runs queries on the analysts' clients."""

    def __init__(self, token: str, database: str, execute: Execute, timezone: str = "UTC") -> None:
        self.token = token
        self.database = database
        self.execute = execute
        self.timezone = timezone
        self._runner: Any = None

    def _headers(self, query_id: str) -> dict[str, str]:
        return {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Server-Display-Name": "flexstream",
            "X-ClickHouse-Timezone": self.timezone,
        }

    async def handle(self, request: Any) -> Any:
        """Answer one request (aiohttp handler)."""
        from aiohttp import web

        if request.path == "/ping" or (request.method in ("GET", "HEAD") and not request.query):
            return web.Response(text="Ok.\n")
        query_id = request.query.get("query_id") or str(uuid.uuid4())
        try:
            authorized(request.headers, self.token)
            if request.content_type.startswith("multipart/"):
                raise ClickHouseHttpError(
                    400, BAD_ARGUMENTS, "external tables (multipart requests) are not offered here"
                )
            body = await request.read()
            q = parse_request(request.query, body, self.database)
            query_id = q.query_id
            if q.ignored:
                log.debug("settings not applied to query %s: %s", query_id, ", ".join(q.ignored))
            try:
                result = await self.execute(
                    q.sql, None, q.parameters or None, q.default_format or HTTP_DEFAULT_FORMAT
                )
            except ConnectorError as exc:
                raise error_of(exc) from None
            data = native_for(result, q.revision)
        except ClickHouseHttpError as err:
            return web.Response(
                status=err.status,
                text=error_text(err.code, err.message),
                headers={**self._headers(query_id), "X-ClickHouse-Exception-Code": str(err.code)},
            )
        response = web.Response(
            body=data,
            headers={
                **self._headers(query_id),
                "X-ClickHouse-Format": result.format,
                "Content-Type": content_type(result.format),
            },
        )
        if q.compress:
            response.enable_compression()
        return response

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port``."""
        from aiohttp import web

        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def stop(self) -> None:
        """Stop listening and close the connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
