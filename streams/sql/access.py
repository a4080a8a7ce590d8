"""Run SQL on the history wherever it is: through the running worker, or by opening the store.

The embedded engine admits one process per data folder. While a worker runs,
it owns the folder and answers queries on its web endpoint (127.0.0.1 only,
with the token it wrote into the data folder); otherwise the folder is opened
here, used and closed. Either way the query passes the same gates and runs on
the same kind of read-only client (:mod:`connectors.analyst_sql`).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from connectors.analyst_sql import (
    DEFAULT_FORMAT,
    FORMAT_HEADER,
    OWN_FORMAT_HEADER,
    SqlResult,
    open_analyst_sql,
)
from connectors.settings import Settings
from schemas.errors import ConnectorError
from streams.sql import auth as sql_auth
from streams.worker_file import worker_state


def run_sql(
    settings: Settings,
    sql: str,
    fmt: str | None = DEFAULT_FORMAT,
    timeout: float = 60,
    parameters: Mapping[str, Any] | None = None,
) -> bytes:
    """Run ``sql`` and return the result in ClickHouse format ``fmt``.

    ``fmt=None`` takes the SQL's own FORMAT clause (JSONCompact without one);
    a format given here and a different one in the SQL are refused.
    ``parameters`` are the values of the SQL's ``{name:Type}`` placeholders,
    bound by the engine (strings and numbers).
    """
    return execute_sql(settings, sql, fmt, timeout, parameters).data


def execute_sql(
    settings: Settings,
    sql: str,
    fmt: str | None = None,
    timeout: float = 60,
    parameters: Mapping[str, Any] | None = None,
) -> SqlResult:
    """Run ``sql``; the result with its format, as :func:`run_sql` describes."""
    url = settings.clickhouse.url.get_secret_value() if settings.clickhouse.url else None
    state = None if url else worker_state(settings.paths.root)
    if state:
        token = sql_auth.read_token(settings.paths.root)
        if token is None:
            raise ConnectorError(
                f"the worker (pid {state['pid']}) holds the data folder but its token "
                f"({sql_auth.TOKEN_FILE}) cannot be read there; wait for it to start, or run "
                "as the user who started it"
            )
        body: dict[str, Any] = {"sql": sql, "format": fmt}
        if parameters:
            body["parameters"] = dict(parameters)
        req = urllib.request.Request(
            f"http://127.0.0.1:{state['web_port']}/sql/",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return SqlResult(
                    resp.read(),
                    resp.headers.get(FORMAT_HEADER, fmt or DEFAULT_FORMAT),
                    resp.headers.get(OWN_FORMAT_HEADER) == "True",
                )
        except urllib.error.HTTPError as exc:
            body = exc.read().decode(errors="replace")
            try:
                body = json.loads(body).get("error", body)
            except ValueError:
                pass
            raise ConnectorError(f"query failed: {body}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ConnectorError(
                f"the worker (pid {state['pid']}) holds the data folder but does not answer on "
                f"127.0.0.1:{state['web_port']} ({exc}); wait for it to start or stop it"
            ) from None
    # The store makes sure the tables exist; the query runs on a read-only client.
    from connectors.clickhouse import Store

    store = Store.open(url, settings.clickhouse.database, settings.paths.root)
    try:
        analysts = open_analyst_sql(settings)
        try:
            return analysts.execute(sql, fmt, parameters)
        except ConnectorError as exc:  # refused, or the engine's message
            raise ConnectorError(f"query failed: {exc}") from None
        finally:
            analysts.close()
    finally:
        store.close()


def query_rows(
    settings: Settings, sql: str, parameters: Mapping[str, Any] | None = None
) -> tuple[list[str], list[list]]:
    """Run ``sql``; return column names and rows (values as JSON types).

    ``parameters``: values of the SQL's ``{name:Type}`` placeholders.
    """
    data = json.loads(run_sql(settings, sql, "JSONCompact", parameters=parameters))
    return [m["name"] for m in data["meta"]], data["data"]
