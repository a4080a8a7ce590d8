"""``flexstream delete sensor|asset|report|forecaster NAME``: tombstones on the compacted topics.

A deletion is a message with the entity's key and no value on the topic it
lives on (``registry`` for sensors, assets and forecasters, ``report-definitions``
for reports): every view drops the entity, the worker stops running a deleted
report and removes a deleted sensor or asset from its ClickHouse table.
Nothing still referring to the entity may remain (:mod:`schemas.deletion`).

A sensor's beliefs stay in ClickHouse unless ``--purge``; so do a forecaster's
forecasts (beliefs from source ``forecaster:<name>``) and scores. Purging writes
to the store, which the embedded engine admits to one process: while a worker
holds the data folder, the worker purges (its ``/admin/purge/`` endpoint, with
the data folder's admin token, once the tombstone has reached it); otherwise
the command opens the store itself.
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


def _purge_through_worker(
    worker: dict[str, Any], s: Any, kind: str, name: str, timeout: float
) -> int:
    """Have the running ``worker`` purge deleted ``kind`` (sensor, forecaster) ``name``."""
    import json
    import time
    import urllib.error
    import urllib.request

    from streams.sql import auth

    token = auth.read_token(s.paths.root, auth.ADMIN_TOKEN_FILE)
    if token is None:
        raise InfraError(
            f"--purge: the admin token ({auth.ADMIN_TOKEN_FILE}) of the running worker (pid "
            f"{worker['pid']}) cannot be read in {s.paths.root}; run as the user who started it"
        )
    req = urllib.request.Request(
        f"http://127.0.0.1:{worker['web_port']}/admin/purge/",
        data=json.dumps({kind: name}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return int(json.loads(resp.read())["purged"])
        except urllib.error.HTTPError as exc:
            reason = exc.read().decode(errors="replace")
            if exc.code not in (409, 503) or time.monotonic() > deadline:
                raise InfraError(
                    f"--purge: the worker (pid {worker['pid']}) did not purge {kind} {name} "
                    f"({exc.code}: {reason}); it is deleted, its beliefs stay: run "
                    f"'flexstream delete {kind} {name} --purge' again later"
                ) from None
        except (urllib.error.URLError, OSError) as exc:
            raise InfraError(
                f"--purge: the worker (pid {worker['pid']}) does not answer on 127.0.0.1:"
                f"{worker['web_port']} ({exc}); the {kind} is deleted, its beliefs stay"
            ) from None
        time.sleep(0.3)  # the tombstone has not reached the worker yet


def _file_sensors(s: Any) -> set[str]:
    """Names of the sensors in the worker's sensors file (the registry cannot delete these)."""
    from schemas.beliefs import load_sensors
    from schemas.documents import load_document

    path = s.worker.sensors_file
    return set(load_sensors(load_document(path), str(path))) if path else set()


def _purge(worker: dict[str, Any] | None, s: Any, name: str, kind: str = "sensor") -> int:
    """Purge deleted ``kind`` ``name``: through the running worker, or here."""
    if worker is not None:
        return _purge_through_worker(worker, s, kind, name, timeout=30.0)
    return _in_store(s, f"{kind}s", name, purge=True)


def _beliefs(n: int) -> str:
    return f"{n} belief{'s' if n != 1 else ''}"


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
    worker = _worker(s)
    if purge and name not in view.sensors and name not in _file_sensors(s):
        # Deleted earlier (its beliefs kept, or a purge that did not finish): purge now.
        confirm(yes, f"the beliefs of sensor {name}, which is not registered")
        n = _purge(worker, s, name)
        click.echo(f"sensor {name} is not registered; purged its {_beliefs(n)}")
        return
    check_sensor_deletable(name, view.sensors, view.assets, _reports(s), view.forecasters)
    confirm(yes, f"sensor {name}" + (" and all its beliefs" if purge else ""))
    registry.tombstone(_producer(s), s.kafka.topic("registry"), "sensor", name)
    if purge:
        n = _purge(worker, s, name)
        click.echo(f"deleted sensor {name} and its {_beliefs(n)}")
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
    confirm(yes, f"forecaster {name}" + (" and all its forecasts" if purge else ""))
    registry.tombstone(_producer(s), s.kafka.topic("registry"), "forecaster", name)
    if purge:
        n = _purge(_worker(s), s, name, "forecaster")
        click.echo(f"deleted forecaster {name} and its {n} forecast belief{'s' if n != 1 else ''}")
        return
    _mirror(s, "forecasters", name)
    click.echo(
        f"deleted forecaster {name} (its forecasts stay in ClickHouse; --purge deletes them)"
    )
