"""``flexstream add report``, ``show reporters``, ``show reports`` and ``chart``.

``add report`` without ``--start``/``--end`` registers a streaming report (on
the compacted ``report-definitions`` topic; the worker runs it continuously);
with them it computes the report over the ClickHouse history (a batch run) and
publishes the results to the ``reports`` topic, unless ``--dry-run``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from schemas.errors import InputError
from schemas.times import format_duration


def _settings():  # noqa: ANN202 - lazy imports keep `--help` fast
    from connectors.settings import Settings

    return Settings()


def _console():  # noqa: ANN202
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


@click.command("report")
@click.option("--reporter", help="Reporter name (default: the config's 'reporter' key).")
@click.option(
    "--config",
    "config_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Reporter config, YAML/JSON.",
)
@click.option(
    "--parameters",
    "parameters_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Report parameters (input, output, window, resolution, timezone), YAML/JSON.",
)
@click.option("--name", help="Report name (default: the first output sensor's name).")
@click.option("--grace", default="PT5M", show_default=True, help="Event-time grace period.")
@click.option(
    "--timeout",
    default="PT15M",
    show_default=True,
    help="Processing time without input after which a window closes anyway.",
)
@click.option("--start", help="Batch run: first window start, ISO 8601 with offset.")
@click.option("--end", help="Batch run: last window end, ISO 8601 with offset.")
@click.option("--dry-run", is_flag=True, help="Batch run: compute and print, publish nothing.")
@click.option(
    "--output-file", type=click.Path(dir_okay=False), help="Batch run: also write a CSV file."
)
def add_report(
    reporter: str | None,
    config_file: str,
    parameters_file: str,
    name: str | None,
    grace: str,
    timeout: str,
    start: str | None,
    end: str | None,
    dry_run: bool,
    output_file: str | None,
) -> None:
    """Register a streaming report, or compute one over the history (--start/--end)."""
    from schemas.report_definition import build_definition
    from schemas.reporters import load_parameters, read_document

    config = read_document(config_file)
    kind = reporter or config.get("reporter")
    if not kind:
        raise InputError("give --reporter, or a 'reporter' key in the config", "--reporter")
    params = load_parameters(parameters_file)
    defn = build_definition(
        name or params.output[0].sensor, str(kind), config, params, grace, timeout
    )
    if (start is None) != (end is None):
        raise InputError(
            "a batch run needs both --start and --end", "--end" if start else "--start"
        )
    if start is None:
        if dry_run or output_file:
            raise InputError("--dry-run and --output-file need --start and --end", "--start")
        _register(defn)
        return
    _batch(defn, start, end, dry_run, output_file)


def _register(defn: Any) -> None:
    from connectors import report_definitions
    from connectors.kafka import ConfirmingProducer
    from streams import runtime
    from streams.reports.batch import known_sensors
    from streams.reports.compute import prepare

    s = _settings()
    sensors = known_sensors(s)
    wanted = [i.sensor for i in defn.parameters.input] + [o.sensor for o in defn.parameters.output]
    missing = [n for n in wanted if n not in sensors]
    if not missing:
        prepare(defn, sensors)  # refuses resolution and timezone mismatches now
    bs = runtime.bootstrap(s, start=False)
    producer = ConfirmingProducer(s.kafka.client_config(bs))
    report_definitions.publish(producer, s.kafka.topic(report_definitions.TOPIC), [defn])
    p = defn.parameters
    click.echo(
        f"registered report {defn.name} ({defn.reporter}, window {format_duration(p.window)}, "
        f"grace {format_duration(defn.grace)}): results as {defn.source} on "
        + ", ".join(o.sensor for o in p.output)
    )
    if missing:
        click.echo(
            f"warning: sensor(s) {', '.join(missing)} are not registered yet; the report "
            "starts once they are ('flexstream add sensor')",
            err=True,
        )


def _batch(defn: Any, start: str, end: str | None, dry_run: bool, output_file: str | None) -> None:
    from rich.table import Table

    from streams.cli.progress import LazyProgress
    from streams.reports.batch import (
        parse_time,
        publish_records,
        record_rows,
        run_batch,
        write_csv,
    )

    s = _settings()
    t0, t1 = parse_time(start, "--start"), parse_time(end or "", "--end")
    if t1 <= t0:
        raise InputError("--end must be after --start", "--end")
    with LazyProgress(f"report {defn.name}: windows computed") as bar:
        prep, records = run_batch(s, defn, t0, t1, progress=bar.report)
    rows = record_rows(records, prep.parameters.timezone)
    table = Table("sensor", "event start (UTC)", "value", title=f"report {defn.name}")
    for r in rows:
        table.add_row(r["sensor"], r["event_start"][:16].replace("T", " "), f"{r['event_value']:g}")
    _console().print(table)
    if output_file:
        write_csv(rows, output_file)
        click.echo(f"wrote {len(rows)} values to {output_file}")
    if dry_run:
        click.echo(f"dry run: {len(rows)} values computed, nothing published")
        return
    n = publish_records(s, records)
    click.echo(
        f"published {len(rows)} values in {n} messages to {s.kafka.topic('reports')} as "
        f"{defn.source}; the worker stores them in ClickHouse"
    )


def _short_type(text: str) -> str:
    """``dict[Annotated[str, BeforeValidator(...), ...], float]`` -> ``dict[str, float]``."""
    import re

    return re.sub(r"Annotated\[(\w+), .*?metadata=\[[^\]]*\]\)\]", r"\1", text)


@click.command("reporters")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show_reporters(fmt: str) -> None:
    """List the reporters and their config fields."""
    from rich.table import Table

    from streams.reports.reporters.registry import describe

    items = describe()
    if fmt == "json":
        click.echo(json.dumps(items, indent=2, default=str))
        return
    console = _console()
    for item in items:
        table = Table(
            "field", "type", "required", "default", "description",
            title=f"{item['name']}: {item['summary']}",
            title_justify="left",
        )  # fmt: skip
        for f in item["fields"]:
            table.add_row(
                f["name"],
                _short_type(f["type"]),
                "yes" if f["required"] else "no",
                "" if f["required"] else json.dumps(f["default"], default=str),
                f["description"],
            )
        console.print(table)


@click.command("reports")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show_reports(fmt: str) -> None:
    """List the registered streaming reports."""
    from rich.table import Table

    from connectors import report_definitions
    from streams import runtime

    s = _settings()
    bs = runtime.bootstrap(s, start=False)
    view = report_definitions.read_definitions(
        s.kafka.client_config(bs), s.kafka.topic(report_definitions.TOPIC)
    )
    defs = sorted(view.reports.values(), key=lambda d: d.name)
    if fmt == "json":
        click.echo(json.dumps([json.loads(d.model_dump_json()) for d in defs], indent=2))
        return
    table = Table("name", "reporter", "inputs", "outputs", "window", "grace", "timeout")
    for d in defs:
        p = d.parameters
        table.add_row(
            d.name,
            d.reporter,
            ", ".join(f"{i.name}={i.sensor}" for i in p.input),
            ", ".join(f"{o.name}={o.sensor}" for o in p.output),
            format_duration(p.window),
            format_duration(d.grace),
            format_duration(d.timeout),
        )
    _console().print(table)


@click.command("chart")
@click.option("--sensor", "sensors", multiple=True, required=True, help="Sensor (repeat).")
@click.option("--start", required=True, help="ISO 8601 with offset.")
@click.option("--end", required=True, help="ISO 8601 with offset.")
@click.option(
    "--output",
    default="chart.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="F.html (self-contained), F.png or F.svg.",
)
@click.option("--title", help="Chart title.")
@click.option(
    "--timezone",
    help="IANA timezone of the time axis, e.g. Europe/Amsterdam or UTC (default: the "
    "sensors' timezone when they share one, else UTC).",
)
def chart(
    sensors: tuple[str, ...],
    start: str,
    end: str,
    output: str,
    title: str | None,
    timezone: str | None,
) -> None:
    """Chart beliefs, schedules and reports of sensors as Vega-Lite (HTML, PNG or SVG).

    The HTML file fills the browser window's width and needs no network; PNG
    and SVG are 720 pixels wide. Series of daily (or longer) resolution, such
    as daily KPI reports, are drawn as bars per day, the others as steps.
    """
    from schemas.times import zone
    from streams.reports.batch import parse_time, write_chart

    if timezone is not None:
        zone(timezone, "--timezone")
    t0, t1 = parse_time(start, "--start"), parse_time(end, "--end")
    if t1 <= t0:
        raise InputError("--end must be after --start", "--end")
    path = write_chart(_settings(), list(sensors), t0, t1, output, title, timezone)
    click.echo(f"wrote {path}")
