"""``flexstream delete sensor|asset|report|forecaster NAME``: tombstones on the compacted topics.

A deletion is a message with the entity's key and no value on the topic it
lives on (``registry`` for sensors, assets and forecasters,
``report-definitions`` for reports): every view drops the entity, the worker stops running a deleted
report and removes a deleted sensor or asset from its ClickHouse table.
Nothing still referring to the entity may remain (:mod:`schemas.deletion`).

A sensor's beliefs stay in ClickHouse unless ``--purge``; so do a
forecaster's forecasts (beliefs from source ``forecaster:<name>``) and scores. Purging writes to
the store, which the embedded engine admits to one process: while a worker
holds the data folder, ``--purge`` is refused (the worker's SQL endpoint is
read-only by design); stop the worker, purge, start it again.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from schemas.errors import FlexStreamError, InfraError, InputError


def _settings():  # noqa: ANN202 - lazy imports keep `--help` fast
    from connectors.settings import Settings

    return Settings()


def _kafka(s: Any) -> dict[str, Any]:
    from streams import runtime

    return s.kafka.client_config(runtime.bootstrap(s, start=False))


def _registry(s: Any) -> Any:
    from connectors.registry import read_registry

    return read_registry(_kafka(s), s.kafka.topic("registry"))


def _reports(s: Any) -> dict[str, Any]:
    from connectors import report_definitions

    topic = s.kafka.topic(report_definitions.TOPIC)
    return report_definitions.read_definitions(_kafka(s), topic).reports


def _producer(s: Any) -> Any:
    from connectors.kafka import ConfirmingProducer

    return ConfirmingProducer(_kafka(s))


def _worker(s: Any) -> dict[str, Any] | None:
    """The worker holding the embedded store, or None (also with CLICKHOUSE_URL)."""
    from streams.worker_file import worker_state

    return None if s.clickhouse.url else worker_state(s.paths.root)


def confirm(yes: bool, what: str, interactive: bool | None = None) -> None:
    """Ask before deleting ``what``; without a terminal, only ``--yes`` goes ahead."""
    if yes:
        return
    if not (sys.stdin.isatty() if interactive is None else interactive):
        raise InputError(f"not a terminal to confirm in: add --yes to delete {what}", "--yes")
    click.confirm(f"delete {what}?", abort=True)


def _purge_allowed(s: Any, purge: bool) -> None:
    """Refuse ``--purge`` while a worker holds the embedded store."""
    worker = _worker(s)
    if purge and worker is not None:
        raise InfraError(
            f"--purge: the running worker (pid {worker['pid']}) holds the embedded store and "
            "only reads through its SQL endpoint; stop the worker first, then run this again "
            "(or delete without --purge: the beliefs stay)"
        )


def _in_store(s: Any, table: str, name: str, purge: bool) -> int:
    """Without a worker: remove ``name`` from its mirror table and, if asked, purge its beliefs.

    For a forecaster, its beliefs are those of its source, with its scores.
    """
    from connectors.clickhouse import Store
    from schemas.forecaster import forecaster_source

    url = s.clickhouse.url.get_secret_value() if s.clickhouse.url else None
    store = Store.open(url, s.clickhouse.database, s.paths.root)
    try:
        store.forget(table, [name])
        if not purge:
            return 0
        if table == "forecasters":
            return store.purge_forecasts(forecaster_source(name))
        return store.purge_beliefs(name)
    finally:
        store.close()


def _mirror(s: Any, table: str, name: str) -> None:
    """Remove ``name`` from its ClickHouse table now, or leave it to the running worker."""
    if _worker(s) is not None:
        return  # the worker follows the registry and removes it
    try:
        _in_store(s, table, name, purge=False)
    except FlexStreamError as exc:
        click.echo(
            f"warning: {name} stays in the {table} table for now ({exc}); "
            "the next worker removes it",
            err=True,
        )


@click.command("sensor")
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also delete the sensor's beliefs from ClickHouse.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_sensor(name: str, purge: bool, yes: bool) -> None:
    """Delete sensor NAME from the registry (its beliefs stay unless --purge).

    Refused while an asset's flex-model or flex-context, or a report's inputs or
    outputs, name the sensor: delete or change them first.
    """
    from connectors import registry
    from schemas.deletion import check_sensor_deletable

    s = _settings()
    view = _registry(s)
    check_sensor_deletable(name, view.sensors, view.assets, _reports(s), view.forecasters)
    _purge_allowed(s, purge)
    confirm(yes, f"sensor {name}" + (" and all its beliefs" if purge else ""))
    registry.tombstone(_producer(s), s.kafka.topic("registry"), "sensor", name)
    if purge:
        n = _in_store(s, "sensors", name, purge=True)
        click.echo(f"deleted sensor {name} and its {n} belief{'s' if n != 1 else ''}")
        return
    _mirror(s, "sensors", name)
    click.echo(f"deleted sensor {name} (its beliefs stay in ClickHouse; --purge deletes them)")


@click.command("asset")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_asset(name: str, yes: bool) -> None:
    """Delete asset NAME from the registry (refused while other assets have it as parent)."""
    from connectors import registry
    from schemas.deletion import check_asset_deletable

    s = _settings()
    check_asset_deletable(name, _registry(s).assets)
    confirm(yes, f"asset {name}")
    registry.tombstone(_producer(s), s.kafka.topic("registry"), "asset", name)
    _mirror(s, "assets", name)
    click.echo(f"deleted asset {name}")


@click.command("report")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_report(name: str, yes: bool) -> None:
    """Delete streaming report NAME: the worker stops running it (its results stay)."""
    from connectors import report_definitions
    from schemas.deletion import check_report_deletable

    s = _settings()
    check_report_deletable(name, _reports(s))
    confirm(yes, f"report {name}")
    report_definitions.tombstone(_producer(s), s.kafka.topic(report_definitions.TOPIC), name)
    click.echo(f"deleted report {name} (its results stay in ClickHouse)")


@click.command("forecaster")
@click.argument("name")
@click.option("--purge", is_flag=True, help="Also delete its forecasts and scores from ClickHouse.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete_forecaster(name: str, purge: bool, yes: bool) -> None:
    """Delete forecaster NAME: the worker stops forecasting (its forecasts stay unless --purge)."""
    from connectors import registry
    from schemas.deletion import check_forecaster_deletable

    s = _settings()
    check_forecaster_deletable(name, _registry(s).forecasters)
    _purge_allowed(s, purge)
    confirm(yes, f"forecaster {name}" + (" and all its forecasts" if purge else ""))
    registry.tombstone(_producer(s), s.kafka.topic("registry"), "forecaster", name)
    if purge:
        n = _in_store(s, "forecasters", name, purge=True)
        click.echo(f"deleted forecaster {name} and its {n} forecast belief{'s' if n != 1 else ''}")
        return
    _mirror(s, "forecasters", name)
    click.echo(
        f"deleted forecaster {name} (its forecasts stay in ClickHouse; --purge deletes them)"
    )
