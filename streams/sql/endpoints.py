"""The worker's SQL endpoints: ``POST /sql/``, the ClickHouse interface, ``POST /admin/purge/``.

``install(ctx)`` adds them to a worker (a feature like the agents):

- ``POST /sql/`` and the read-only ClickHouse HTTP interface
  (:mod:`streams.sql.clickhouse_http`) run analysts' queries on one read-only
  runner (:mod:`connectors.analyst_sql`), opened on the first query once the
  store is open, with the readers' token (``sql-token``);
- ``POST /admin/purge/`` is the operators' one write through the worker, with
  the admin token (``admin-token``): it deletes the beliefs of a deleted sensor,
  or the forecasts and scores of a deleted forecaster.

Both tokens are written afresh into the data folder at start (:mod:`streams.sql.auth`).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import Mapping
from typing import Any

import faust

from connectors.analyst_sql import (
    DEFAULT_FORMAT,
    FORMAT_HEADER,
    OWN_FORMAT_HEADER,
    AnalystSql,
    SqlResult,
    open_analyst_sql,
)
from schemas.errors import ConnectorError
from schemas.forecaster import forecaster_source
from streams.context import WorkerContext
from streams.sql import auth as sql_auth
from streams.sql.clickhouse_http import ClickHouseInterface

log = logging.getLogger("flexstream.worker")


def install(ctx: WorkerContext) -> None:
    """Add the SQL endpoints to the worker of ``ctx``."""
    app, s = ctx.app, ctx.settings
    data_dir = s.paths.root
    sql_token = sql_auth.new_token(data_dir)
    admin_token = sql_auth.new_token(data_dir, sql_auth.ADMIN_TOKEN_FILE)
    analysts: dict[str, AnalystSql] = {}  # opened on the first query, once the store is open

    def _close_analysts() -> None:
        if "runner" in analysts:
            analysts.pop("runner").close()

    atexit.register(_close_analysts)

    async def analyst_query(
        sql: str,
        fmt: str | None,
        params: Mapping[str, Any] | None,
        default: str = DEFAULT_FORMAT,
    ) -> SqlResult:
        """Run an analyst's query on the read-only runner (ConnectorError when refused)."""
        if ctx.store is None:
            raise ConnectorError("the worker's store is not open yet; retry shortly")
        if "runner" not in analysts:
            analysts["runner"] = open_analyst_sql(s)
        return await analysts["runner"].execute_async(sql, fmt, params, default)

    port = s.worker.clickhouse_port
    if port:
        interface = ClickHouseInterface(sql_token, s.clickhouse.database, analyst_query)

        @app.task
        async def _clickhouse_interface() -> None:
            """Serve ClickHouse's HTTP interface, read-only, until the worker stops."""
            try:
                await interface.start("127.0.0.1", port)
            except OSError as exc:
                log.warning(
                    "the ClickHouse interface cannot listen on 127.0.0.1:%d (%s); set "
                    "FLEXSTREAM_WORKER_CLICKHOUSE_PORT to a free port, or 0 to turn it off",
                    port,
                    exc,
                )
                return
            log.info("ClickHouse interface (read-only) on 127.0.0.1:%d", port)
            try:
                await asyncio.Event().wait()
            finally:
                await interface.stop()

    @app.page("/sql/")
    class SqlView(faust.web.View):
        """Run an analyst's query: POST {"sql": ..., "format": ...} as application/json.

        ``format`` is optional: without it the SQL's own FORMAT clause, else
        JSONCompact. ``parameters`` (optional) are the values of the SQL's
        ``{name:Type}`` placeholders, bound by the engine. The response's
        headers name the format and whether the SQL named it.

        Needs the data folder's token (see :mod:`streams.sql.auth`); refuses
        cross-origin requests. The query passes the gates of
        :mod:`connectors.analyst_sql` and runs on its read-only clients and
        threads, never on the worker's writer.
        """

        async def post(self, request: faust.web.Request) -> faust.web.Response:
            refused = sql_auth.refusal(request.headers, sql_token)
            if refused:
                return self.error(*refused)
            try:
                body = await request.json()
                sql, fmt = str(body["sql"]), body.get("format")
                fmt = None if fmt is None else str(fmt)
                params = body.get("parameters")
            except (ValueError, KeyError, TypeError, AttributeError):
                return self.error(400, 'send a JSON object {"sql": ..., "format": ...}')
            if ctx.store is None:
                return self.error(503, "the worker's store is not open yet; retry shortly")
            try:
                result = await analyst_query(sql, fmt, params)
            except ConnectorError as exc:  # refused, or the engine's message
                return self.error(400, str(exc))
            return self.bytes(
                result.data,
                content_type="application/octet-stream",
                headers={FORMAT_HEADER: result.format, OWN_FORMAT_HEADER: str(result.own_format)},
            )

    @app.page("/admin/purge/")
    class PurgeView(faust.web.View):
        """Purge a deleted entity: POST {"sensor": NAME} or {"forecaster": NAME} as JSON.

        A sensor's beliefs, or a forecaster's forecasts (its source) and scores.
        The operators' one write through the worker (which holds the embedded
        store): it needs the data folder's admin token, not the readers' one,
        and only an entity already deleted from the registry is purged (409
        while the worker still knows it, e.g. before the tombstone reached it).
        """

        async def post(self, request: faust.web.Request) -> faust.web.Response:
            refused = sql_auth.refusal(request.headers, admin_token, sql_auth.ADMIN_TOKEN_FILE)
            if refused:
                return self.error(*refused)
            try:
                body = await request.json()
                ((kind, name),) = body.items()
                if kind not in ("sensor", "forecaster") or not isinstance(name, str) or not name:
                    raise TypeError(name)
            except (ValueError, TypeError, AttributeError):
                return self.error(
                    400, 'send a JSON object {"sensor": NAME} or {"forecaster": NAME}'
                )
            known = ctx.sensors if kind == "sensor" else ctx.registry.forecasters
            if name in known:
                return self.error(409, f"{kind} {name!r} is still registered; delete it first")
            store = ctx.store
            if store is None:
                return self.error(503, "the worker's store is not open yet; retry shortly")
            if kind == "sensor":
                purged = await ctx.run_db(store.purge_beliefs, name)
            else:
                purged = await ctx.run_db(store.purge_forecasts, forecaster_source(name))
            log.info("purged %d beliefs of deleted %s %s", purged, kind, name)
            return self.json({kind: name, "purged": purged})

    _ = (SqlView, PurgeView)
