"""What stands in the way of deleting a sensor, an asset, a report or a forecaster (pure checks).

A deletion writes a tombstone to the compacted topic the entity lives on. Before
that, the command makes sure nothing registered still points at the entity:
an asset's flex-model or flex-context, a report's inputs and outputs, or a
forecaster's target and regressors may name a sensor; an asset may be the
parent of others. Each check raises
:class:`InputError` naming what refers to the entity and what to do.
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.assets import Asset, sensor_refs
from schemas.beliefs import Sensor
from schemas.errors import InputError
from schemas.forecaster import Forecaster
from schemas.report_definition import ReportDefinition


def asset_sensors(asset: Asset) -> set[str]:
    """Every sensor an asset names: its devices and any ``{"sensor": ...}`` of its flex fields."""
    return set(asset.devices) | sensor_refs(asset.flex_model) | sensor_refs(asset.flex_context)


def report_sensors(report: ReportDefinition) -> set[str]:
    """Every sensor a report reads (inputs) or writes (outputs)."""
    p = report.parameters
    return {i.sensor for i in p.input} | {o.sensor for o in p.output}


def sensor_users(
    name: str,
    assets: Mapping[str, Asset],
    reports: Mapping[str, ReportDefinition],
    forecasters: Mapping[str, Forecaster] | None = None,
) -> list[str]:
    """What refers to sensor ``name``, e.g. ``["asset 'battery'", "report 'kpi'"]``, sorted."""
    users = [f"asset {a!r}" for a, asset in sorted(assets.items()) if name in asset_sensors(asset)]
    users += [f"report {r!r}" for r, d in sorted(reports.items()) if name in report_sensors(d)]
    users += [
        f"forecaster {f!r}"
        for f, d in sorted((forecasters or {}).items())
        if name == d.sensor or name in d.regressors
    ]
    return users


def child_assets(name: str, assets: Mapping[str, Asset]) -> list[str]:
    """The assets whose parent is ``name``, sorted."""
    return sorted(a for a, asset in assets.items() if asset.parent == name)


def check_sensor_deletable(
    name: str,
    sensors: Mapping[str, Sensor],
    assets: Mapping[str, Asset],
    reports: Mapping[str, ReportDefinition],
    forecasters: Mapping[str, Forecaster] | None = None,
) -> None:
    """Refuse deleting a sensor not registered, or named by an asset, report or forecaster."""
    if name not in sensors:
        raise InputError(f"sensor {name!r} is not registered ('flexstream show sensors')", "NAME")
    users = sensor_users(name, assets, reports, forecasters)
    if users:
        raise InputError(
            f"sensor {name!r} is still referenced by {', '.join(users)}; delete or change "
            + ("it" if len(users) == 1 else "them")
            + " first",
            "NAME",
        )


def check_asset_deletable(name: str, assets: Mapping[str, Asset]) -> None:
    """Refuse to delete an asset that is not registered or that is the parent of others."""
    if name not in assets:
        raise InputError(f"asset {name!r} is not registered ('flexstream show assets')", "NAME")
    children = child_assets(name, assets)
    if children:
        raise InputError(
            f"asset {name!r} still has child asset(s) {', '.join(map(repr, children))}; "
            "delete them or give them another parent first",
            "NAME",
        )


def check_report_deletable(name: str, reports: Mapping[str, ReportDefinition]) -> None:
    """Refuse to delete a report that is not registered."""
    if name not in reports:
        raise InputError(f"report {name!r} is not registered ('flexstream show reports')", "NAME")


def check_forecaster_deletable(name: str, forecasters: Mapping[str, Forecaster]) -> None:
    """Refuse to delete a forecaster that is not registered."""
    if name not in forecasters:
        raise InputError(
            f"forecaster {name!r} is not registered ('flexstream show forecasters')", "NAME"
        )
