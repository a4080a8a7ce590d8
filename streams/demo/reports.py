"""The demo's KPIs: daily totals as report presets, registered for the site and printed.

:func:`demo_reports` runs after the demo's readings landed in ClickHouse. It

1. registers the KPI output sensors (daily, in the site's timezone) and the
   KPI reports as streaming reports, so days that arrive later are reported
   as they close;
2. computes the KPIs of the days already in the history (a batch run, the
   same code as the streaming reports) and publishes them to the reports
   topic; the worker stores them in ClickHouse;
3. prints a table of the daily KPIs from ClickHouse and writes a chart of the
   prices, the battery (measured and, when there is one, its schedule) and its
   state of charge to ``<data>/demo/chart.html``.

The KPIs (presets in ``streams/reports/reporters/presets``): energy imported and
exported at the grid connection (``kpi_daily_energy``), the cost of the grid
flow at the day-ahead price (``kpi_daily_cost``), and the share of PV
production used on site (``kpi_self_consumption``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors import registry, report_definitions
from connectors.clickhouse import in_list
from connectors.kafka import ConfirmingProducer
from connectors.settings import Settings
from schemas.beliefs import Sensor
from schemas.errors import InfraError
from schemas.report_definition import ReportDefinition, build_definition
from schemas.reporters import load_parameters
from schemas.times import engine_time
from streams import runtime
from streams.reports.batch import known_sensors, publish_records, run_batch, write_chart
from streams.reports.reporters.presets import load_preset
from streams.sql.access import query_rows

#: KPI columns of the printed table: (output suffix, title, format).
KPI_COLUMNS = (
    ("energy-consumed", "consumed (kWh)", "{:.1f}"),
    ("energy-produced", "produced (kWh)", "{:.1f}"),
    ("cost", "cost (EUR)", "{:.2f}"),
    ("self-consumption", "self-consumption", "{:.0f} %"),
)


def kpi_sensors(site: str, timezone: str) -> list[Sensor]:
    """The daily KPI output sensors of ``site``."""
    day = timedelta(days=1)

    def s(suffix: str, unit: str, text: str) -> Sensor:
        return Sensor(
            name=f"{site}-{suffix}",
            unit=unit,
            event_resolution=day,
            timezone=timezone,
            description=text,
        )

    return [
        s("energy-consumed", "kWh", "Daily energy imported at the grid connection"),
        s("energy-produced", "kWh", "Daily energy exported at the grid connection"),
        s("cost", "EUR", "Daily cost of the grid flow at day-ahead prices"),
        s("self-consumption", "%", "Daily share of PV production used on site"),
        s("self-consumed", "kWh", "Daily PV energy used on site"),
        s("pv-produced", "kWh", "Daily PV production"),
    ]


def kpi_definitions(site: str) -> list[ReportDefinition]:
    """The KPI reports of ``site`` (sensors ``<site>-grid``, ``-pv``, ``-load``, ``-day-ahead``)."""

    def defn(name: str, preset: str, inputs: dict[str, str], outputs: dict[str, str]):
        p = load_preset(preset)
        params = load_parameters(
            {
                "input": [{"name": a, "sensor": f"{site}-{s}"} for a, s in inputs.items()],
                "output": [{"name": n, "sensor": f"{site}-{s}"} for n, s in outputs.items()],
                "window": "P1D",
            }
        )
        config = p.config.model_dump(mode="json", exclude_none=True)
        return build_definition(f"{site}-{name}", p.reporter_name, config, params, "PT15M", "PT1H")

    return [
        defn(
            "kpi-energy",
            "kpi_daily_energy",
            {"site": "grid"},
            {"energy_consumed": "energy-consumed", "energy_produced": "energy-produced"},
        ),
        defn(
            "kpi-cost", "kpi_daily_cost", {"grid": "grid", "price": "day-ahead"}, {"cost": "cost"}
        ),
        defn(
            "kpi-self-consumption",
            "kpi_self_consumption",
            {"production": "pv", "consumption": "load"},
            {
                "self_consumption_share": "self-consumption",
                "self_consumed": "self-consumed",
                "produced": "pv-produced",
            },
        ),
    ]


def local_days(start: datetime, end: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The whole local days of ``timezone`` inside ``[start, end)``, as UTC bounds."""
    tz = ZoneInfo(timezone)
    first = start.astimezone(tz).date()
    if datetime.combine(first, dtime(0), tzinfo=tz) < start:
        first += timedelta(days=1)
    last = end.astimezone(tz).date()
    return (
        datetime.combine(first, dtime(0), tzinfo=tz).astimezone(UTC),
        datetime.combine(last, dtime(0), tzinfo=tz).astimezone(UTC),
    )


def _wait(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise InfraError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(0.3)


def demo_reports(
    settings: Settings,
    echo: Callable[[str], Any],
    start: datetime,
    end: datetime,
    site: str = "demo",
) -> dict[str, dict[str, float]]:
    """Register, compute and print the daily KPIs of ``site``; write the demo chart.

    ``site`` is the prefix of the site's sensors (the demo's: ``demo``).
    Returns ``{local day: {KPI: value}}``.
    """
    bs = runtime.bootstrap(settings, start=False)
    conf = settings.kafka.client_config(bs)
    sensors = known_sensors(settings)
    tz = sensors[f"{site}-pv"].timezone if f"{site}-pv" in sensors else "UTC"
    outputs = kpi_sensors(site, tz)
    defs = kpi_definitions(site)
    producer = ConfirmingProducer(conf)
    registry.publish(producer, settings.kafka.topic("registry"), outputs)
    report_definitions.publish(producer, settings.kafka.topic(report_definitions.TOPIC), defs)
    del producer
    names, params = in_list("name", (s.name for s in outputs))
    registered_sql = f"SELECT count() FROM sensors FINAL WHERE name IN {names}"
    # the worker must know the output sensors before it stores their results
    _wait(
        lambda: query_rows(settings, registered_sql, params)[1][0][0] == len(outputs),
        30,
        "registering the KPI sensors",
    )
    echo(f"registered {len(defs)} KPI reports: " + ", ".join(d.name for d in defs))

    day0, day1 = local_days(start, end, tz)
    sensors = {**sensors, **{s.name: s for s in outputs}}
    records: list[dict] = []
    bt = datetime.now(UTC)
    for d in defs:
        records.extend(run_batch(settings, d, day0, day1, sensors, belief_time=bt)[1])
    expected = sum(len(r["values"]) for r in records)
    publish_records(settings, records)
    sources, count_params = in_list("source", (d.source for d in defs))
    count_sql = (
        f"SELECT count() FROM beliefs FINAL WHERE source IN {sources} "
        "AND belief_time >= {believed:DateTime64(6, 'UTC')}"
    )
    count_params["believed"] = engine_time(bt)
    _wait(
        lambda: query_rows(settings, count_sql, count_params)[1][0][0] >= expected,
        60,
        "storing the KPIs",
    )
    kpis = _print_kpis(settings, echo, site, tz, day0, day1)

    chart = Path(settings.paths.root) / "demo" / "chart.html"
    chart.parent.mkdir(parents=True, exist_ok=True)
    write_chart(
        settings,
        [f"{site}-day-ahead", f"{site}-battery", f"{site}-battery-soc"],
        # The last two days measured, and today and tomorrow: prices and the schedule.
        max(start, end - timedelta(days=2)),
        end + timedelta(days=2),
        chart,
        title=f"{site}: day-ahead prices, battery schedule and state of charge",
    )
    echo(f"chart of prices, battery and state of charge: {chart}")
    return kpis


def _print_kpis(
    settings: Settings, echo: Callable, site: str, tz: str, start: datetime, end: datetime
) -> dict[str, dict[str, float]]:
    from rich.console import Console
    from rich.table import Table

    wanted, params = in_list("sensor", (s.name for s in kpi_sensors(site, tz)))
    params |= {"tz": tz, "start": engine_time(start), "end": engine_time(end)}
    _, rows = query_rows(
        settings,
        "SELECT sensor, toString(toDate(event_start, {tz:String})) AS day, event_value "
        f"FROM latest_beliefs WHERE sensor IN {wanted} "
        "AND startsWith(source, 'flexstream-reporter:') "
        "AND event_start >= {start:DateTime64(6, 'UTC')} "
        "AND event_start < {end:DateTime64(6, 'UTC')} "
        "ORDER BY day, sensor",
        params,
    )
    kpis: dict[str, dict[str, float]] = {}
    for sensor, day, value in rows:
        kpis.setdefault(day, {})[sensor.removeprefix(f"{site}-")] = float(value)
    table = Table("day", *(c[1] for c in KPI_COLUMNS), title=f"{site}: daily KPIs ({tz})")
    for day, values in sorted(kpis.items()):
        table.add_row(
            day,
            *(fmt.format(values[k]) if k in values else "-" for k, _, fmt in KPI_COLUMNS),
        )
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    if not kpis:
        echo("no KPIs: the history has no whole local day")
    return kpis
