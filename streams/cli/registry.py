"""``flexstream add sensor|asset`` and ``flexstream show sensors|assets``: the registry on Kafka."""

from __future__ import annotations

import json
import sys

import click

from schemas.errors import InputError


def _client():  # noqa: ANN202 - lazy imports keep `--help` fast
    from connectors.settings import Settings
    from streams import runtime

    s = Settings()
    bs = runtime.bootstrap(s, start=False)
    return s, s.kafka.client_config(bs)


def _publish(items: list) -> int:
    from connectors import registry
    from connectors.kafka import ConfirmingProducer

    s, conf = _client()
    return registry.publish(ConfirmingProducer(conf), s.kafka.topic("registry"), items)


def _documents(file: str) -> list:
    from schemas.documents import load_document

    data = load_document(file)
    return data if isinstance(data, list) else [data]


@click.command("sensor")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="Sensor name (instead of a FILE).")
@click.option("--unit", help="Unit, e.g. kW, kWh, EUR/MWh.")
@click.option("--event-resolution", help="ISO 8601 duration, e.g. PT15M; PT0M: instantaneous.")
@click.option("--timezone", default="UTC", show_default=True)
@click.option(
    "--off-grid", type=click.Choice(["reject", "floor"]), default="reject", show_default=True
)
def add_sensor(
    file: str | None,
    name: str | None,
    unit: str | None,
    event_resolution: str | None,
    timezone: str,
    off_grid: str,
) -> None:
    """Register sensors from a YAML/JSON FILE (one or a list), or one from the options."""
    from schemas.beliefs import load_sensors

    if file:
        sensors = list(load_sensors(_documents(file), file).values())
    else:
        if not (name and unit):
            raise InputError("give a FILE, or at least --name and --unit", "--name")
        item = {"name": name, "unit": unit, "timezone": timezone, "off-grid": off_grid}
        if event_resolution:
            item["event_resolution"] = event_resolution
        sensors = list(load_sensors([item], "sensor").values())
    n = _publish(sensors)
    click.echo(
        f"registered {n} sensor{'s' if n != 1 else ''}: " + ", ".join(s.name for s in sensors)
    )


@click.command("asset")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def add_asset(file: str) -> None:
    """Register assets (flex-model, flex-context, parent, replan policy) from a YAML/JSON FILE.

    Registering an asset again replaces its definition: the next schedule uses it.
    """
    from schemas.assets import Asset
    from schemas.documents import parse_model
    from streams.scheduling.problem import validate_asset

    docs = _documents(file)
    assets = [
        parse_model(Asset, item, f"assets[{i}]" if len(docs) > 1 else "asset")
        for i, item in enumerate(docs)
    ]
    view = _view()
    known = {**view.assets, **{a.name: a for a in assets}}
    for a in assets:
        # As the scheduler will read it: units, fields, referenced sensors registered.
        validate_asset(a, known, view.sensors)
    n = _publish(assets)
    click.echo(f"registered {n} asset{'s' if n != 1 else ''}: " + ", ".join(a.name for a in assets))


def _view():  # noqa: ANN202
    from connectors.registry import read_registry

    s, conf = _client()
    return read_registry(conf, s.kafka.topic("registry"))


def _print(rows: list[dict], columns: list[str], fmt: str, title: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns, title=title)
    for r in rows:
        table.add_row(*(str(r.get(c, "")) for c in columns))
    Console(width=None if sys.stdout.isatty() else 160).print(table)


@click.command("sensors")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show_sensors(fmt: str) -> None:
    """List the registered sensors."""
    view = _view()
    rows = [s.model_dump(mode="json", by_alias=True) for _, s in sorted(view.sensors.items())]
    _print(
        rows,
        ["name", "unit", "event_resolution", "timezone", "off-grid", "description"],
        fmt,
        "sensors",
    )


@click.command("assets")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show_assets(fmt: str) -> None:
    """List the registered assets."""
    view = _view()
    rows = []
    for _, a in sorted(view.assets.items()):
        row = a.model_dump(mode="json", by_alias=True)
        if fmt == "table":
            row = {
                "name": a.name,
                "parent": a.parent or "",
                "devices": ", ".join(a.devices),
                "replan on prices": a.replan.on_new_prices,
                "flex-context": ", ".join(sorted(a.flex_context)),
            }
        rows.append(row)
    _print(rows, ["name", "parent", "devices", "replan on prices", "flex-context"], fmt, "assets")
