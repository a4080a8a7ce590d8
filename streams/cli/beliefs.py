"""``flexstream show beliefs``: what each source currently believes about a sensor's events.

The current belief of an event is the most recent deterministic belief of
each source (the history's ``latest_beliefs`` view), so a correction shows in
place of the value it corrects. The history is read as ``flexstream sql``
reads it: through the running worker, or by opening the store when none runs.
Every value from the command line reaches the engine as a bound query
parameter; the SQL text is fixed. Times are printed in the sensor's timezone,
with their UTC offset.
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass
from datetime import datetime

import click

from schemas.errors import InputError
from schemas.times import engine_time, from_engine_time, parse_aware

SENSOR_SQL = "SELECT unit, timezone FROM sensors FINAL WHERE name = {sensor:String}"

_SELECT = (
    "SELECT event_start, latest_belief_time, source, event_value FROM latest_beliefs "
    "WHERE sensor = {sensor:String}"
)
_AFTER = " AND event_start >= {start:DateTime64(6, 'UTC')}"
_BEFORE = " AND event_start < {end:DateTime64(6, 'UTC')}"
_OF_SOURCE = " AND source = {source:String}"
_ORDER = " ORDER BY event_start, source"

#: Columns of the CSV and keys of the JSON output (the CSV reads back with ``publish``).
COLUMNS = ("sensor", "event_start", "belief_time", "source", "event_value", "unit")


@dataclass(frozen=True)
class BeliefQuery:
    """The fixed SQL text and its bound parameters for one ``show beliefs``."""

    sql: str
    parameters: dict[str, str]


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 datetime with a UTC offset, in UTC; ``option`` names it in errors."""
    return parse_aware(text, option, utc=True)


def belief_query(
    sensor: str,
    start: datetime | None = None,
    end: datetime | None = None,
    source: str | None = None,
) -> BeliefQuery:
    """The current beliefs of ``sensor`` per event and source, events in ``[start, end)``."""
    if start is not None and end is not None and end <= start:
        raise InputError("--end must lie after --start", "--end")
    sql, params = _SELECT, {"sensor": sensor}
    if start is not None:
        sql, params["start"] = sql + _AFTER, engine_time(start)
    if end is not None:
        sql, params["end"] = sql + _BEFORE, engine_time(end)
    if source is not None:
        sql, params["source"] = sql + _OF_SOURCE, source
    return BeliefQuery(sql + _ORDER, params)


def belief_records(rows: list[list], sensor: str, unit: str, timezone: str) -> list[dict]:
    """Rows of :func:`belief_query` as records of :data:`COLUMNS`, times in ``timezone``."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    return [
        {
            "sensor": sensor,
            "event_start": from_engine_time(start).astimezone(zone).isoformat(),
            "belief_time": from_engine_time(believed).astimezone(zone).isoformat(),
            "source": source,
            "event_value": float(value),
            "unit": unit,
        }
        for start, believed, source, value in rows
    ]


def _number(v: float) -> str:
    return repr(v)


def _emit(records: list[dict], fmt: str, sensor: str, unit: str, timezone: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(records, indent=2))
        return
    if fmt == "csv":
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(COLUMNS)
        for r in records:
            out.writerow([_number(r[c]) if c == "event_value" else r[c] for c in COLUMNS])
        return
    if not records:
        click.echo(f"no beliefs of {sensor} in this span", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(
        "event_start",
        "belief_time",
        "source",
        f"value ({unit})",
        title=f"beliefs of {sensor} ({unit}, {timezone})",
    )
    for r in records:
        table.add_row(r["event_start"], r["belief_time"], r["source"], _number(r["event_value"]))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@click.command("beliefs")
@click.option("--sensor", required=True, help="Sensor name.")
@click.option("--start", help="First event start, ISO 8601 with offset (default: the first).")
@click.option("--end", help="Events starting before this, ISO 8601 with offset (default: all).")
@click.option("--source", help="Only the beliefs of this source.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
def show_beliefs(
    sensor: str, start: str | None, end: str | None, source: str | None, fmt: str
) -> None:
    """Print the current belief of each event of SENSOR per source, in the sensor's timezone.

    A newer belief replaces an older one of the same source and event. The CSV
    has the columns of 'flexstream publish'.
    """
    from connectors.settings import Settings
    from streams.sql.access import query_rows

    query = belief_query(
        sensor,
        parse_time(start, "--start") if start else None,
        parse_time(end, "--end") if end else None,
        source,
    )
    settings = Settings()
    _, found = query_rows(settings, SENSOR_SQL, {"sensor": sensor})
    if not found:
        raise InputError(
            f"unknown sensor {sensor!r}: the history has no such sensor; "
            "list them with 'flexstream show sensors'",
            "--sensor",
        )
    unit, timezone = found[0]
    _, rows = query_rows(settings, query.sql, query.parameters)
    _emit(belief_records(rows, sensor, unit, timezone), fmt, sensor, unit, timezone)
