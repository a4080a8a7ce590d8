"""The ``flexstream`` console script: one click group, commands grouped by concern."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from schemas.errors import FlexStreamError
from streams.cli.log_format import LOG_FORMATS


class _Group(click.Group):
    """Turns FlexStream errors into a clear message and exit code 2, without a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FlexStreamError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flexstream", prog_name="flexstream")
def main() -> None:
    """FlexStream: streaming energy flexibility scheduling on Kafka and ClickHouse."""


def _settings():  # noqa: ANN202 - import kept lazy so `flexstream --help` is fast
    from connectors.settings import Settings

    return Settings()


@main.command()
@click.option(
    "--brokers",
    type=click.IntRange(1, 9),
    default=None,
    help="Nodes of the local Kafka: 3 runs a KRaft cluster (replication 3, two in sync) "
    "(default: FLEXSTREAM_KAFKA_BROKERS, 1).",
)
def up(brokers: int | None) -> None:
    """Start the local Kafka broker or cluster (or check the configured one); create the topics."""
    from streams import runtime

    s = _settings()
    if brokers is not None:
        s.kafka.local_brokers = brokers
    bs = runtime.up(s)
    if s.kafka.external:
        where = "external cluster"
    elif s.kafka.local_brokers > 1:
        where = f"local cluster of {s.kafka.local_brokers} nodes, data in {runtime.cluster_dir(s)}"
    else:
        where = f"local broker, data in {runtime.broker_dir(s)}"
    click.echo(f"Kafka ready at {bs} ({where})")
    click.echo(bs)


@main.command()
def down() -> None:
    """Stop the local Kafka broker or cluster (its data stays for the next 'up')."""
    from streams import runtime

    s = _settings()
    if s.kafka.external:
        click.echo("KAFKA_BOOTSTRAP_SERVERS is set: no local broker to stop")
        return
    click.echo("broker stopped" if runtime.down(s) else "no local broker was running")


@main.command()
@click.option(
    "--sensors",
    "sensors_file",
    type=click.Path(exists=True, dir_okay=False),
    help="YAML/JSON file of sensors (default: FLEXSTREAM_WORKER_SENSORS_FILE).",
)
@click.option(
    "--loglevel", default="warning", show_default=True, envvar="FLEXSTREAM_WORKER_LOGLEVEL"
)
@click.option(
    "--log-format",
    type=click.Choice(LOG_FORMATS),
    default="text",
    show_default=True,
    envvar="FLEXSTREAM_WORKER_LOG_FORMAT",
    help="json: one JSON object per line (time in UTC, level, logger, message, exception).",
)
@click.option(
    "--roles",
    "roles_text",
    default=None,
    help="The worker's share of the work, comma-separated: ingest, schedule, report, forecast "
    "(default: FLEXSTREAM_WORKER_ROLES, all four). See the README's Deployment section.",
)
def worker(
    sensors_file: str | None, loglevel: str, log_format: str, roles_text: str | None
) -> None:
    """Run the streaming worker: readings into ClickHouse, schedules, reports, forecasts.

    --roles picks the worker's share of the work (README, "Deployment").
    """
    from faust.worker import Worker

    from streams.roles import RolesError, check_history_access, parse_roles

    s = _settings()
    try:
        if roles_text is not None:
            roles = parse_roles(roles_text)
        else:
            roles = parse_roles(s.worker.roles, "--roles (FLEXSTREAM_WORKER_ROLES)")
        check_history_access(roles, s.clickhouse.url is not None)
    except RolesError as exc:
        raise click.UsageError(str(exc)) from None

    from schemas.beliefs import load_sensors
    from schemas.documents import load_document
    from streams import runtime
    from streams.app import WorkerConfig, create_app
    from streams.cli.log_filters import install as limit_repeated_lines
    from streams.cli.log_format import use_json

    class _Worker(Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if log_format == "json" or not self.stdout.isatty():
                self.spinner = None  # no terminal control codes in a log file or JSON lines

        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            if log_format == "json":
                use_json(logger)
            # The Kafka clients log every reconnect attempt; one line per kind and 30 s.
            limit_repeated_lines(logger)

    path = sensors_file or s.worker.sensors_file
    sensors = load_sensors(load_document(path), str(path)) if path else {}
    bs = runtime.bootstrap(s, start=True)
    app = create_app(WorkerConfig(settings=s, bootstrap=bs, sensors=sensors, roles=roles))
    _Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()


@main.command()
@click.argument("query")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default=None,
    help="How to print the rows (default: table, or as the QUERY's own FORMAT clause says).",
)
def sql(query: str, fmt: str | None) -> None:
    """Run a SQL QUERY on the history (through the running worker, or directly).

    Tables of the project's database need no prefix (``SELECT count() FROM beliefs``).
    A FORMAT clause in the QUERY (one of the offered formats) prints its output as is.
    """
    from streams.sql.access import execute_sql

    s = _settings()
    if fmt == "csv":
        sys.stdout.write(execute_sql(s, query, "CSVWithNames").data.decode())
        return
    result = execute_sql(s, query, None if fmt is None else "JSONCompact")
    if result.own_format:
        out = click.get_binary_stream("stdout")
        out.write(result.data)
        out.flush()
        return
    data = json.loads(result.data)
    names, rows = [m["name"] for m in data["meta"]], data["data"]
    if fmt == "json":
        click.echo(json.dumps([dict(zip(names, r, strict=True)) for r in rows], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*names)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@main.command()
@click.option("--days", default=4, show_default=True, help="Days of sample data.")
@click.option("--keep-running", is_flag=True, help="Leave the broker running afterwards.")
def demo(days: int, keep_running: bool) -> None:
    """Run the whole pipeline on a bundled sample site and print a summary from ClickHouse."""
    from streams.demo.run import run_demo

    run_demo(_settings(), days=days, keep_running=keep_running, echo=click.echo)


@main.group()
def add() -> None:
    """Register sensors, assets and forecasters, or request a schedule."""


@main.group()
def show() -> None:
    """List sensors, assets, forecasters, forecasts, beliefs, schedules, reports or dead letters."""


@main.group()
def delete() -> None:
    """Delete sensors, assets, reports or forecasters (tombstones on their compacted topics)."""


def _register() -> None:
    """Attach the command modules that live in their own files."""
    from streams.cli.registry import add_asset, add_sensor, show_assets, show_sensors

    add.add_command(add_sensor)
    add.add_command(add_asset)
    show.add_command(show_sensors)
    show.add_command(show_assets)
    from streams.cli.publish import publish

    main.add_command(publish)
    from streams.cli.dead_letters import show_dead_letters

    show.add_command(show_dead_letters)
    from streams.cli.schedule import schedule

    main.add_command(schedule)
    from streams.cli.reports import add_report, chart, show_reporters, show_reports

    add.add_command(add_report)
    show.add_command(show_reporters)
    show.add_command(show_reports)
    main.add_command(chart)
    from streams.cli.schedules import add_schedule, show_schedules

    add.add_command(add_schedule)
    show.add_command(show_schedules)
    from streams.cli.beliefs import show_beliefs

    show.add_command(show_beliefs)
    from streams.cli.deletion import delete_asset, delete_forecaster, delete_report, delete_sensor

    delete.add_command(delete_sensor)
    delete.add_command(delete_asset)
    delete.add_command(delete_report)
    delete.add_command(delete_forecaster)
    from streams.cli.forecasting import (
        add_forecaster,
        forecast_group,
        show_forecasters,
        show_forecasts,
    )

    main.add_command(forecast_group)

    add.add_command(add_forecaster)
    show.add_command(show_forecasters)
    show.add_command(show_forecasts)


_register()

__all__ = ["main"]

if __name__ == "__main__":
    main()
