"""``flexstream add forecaster``, ``show forecasters``, ``show forecasts``: forecasters.

A forecaster lives on the registry topic like sensors and assets (kind
``forecaster``); the worker's forecasting feature trains it and publishes its
forecasts. ``show forecasts`` prints their accuracy from ClickHouse.
"""

from __future__ import annotations

from typing import Any

import click

from schemas.errors import InputError
from streams.cli.registry import _documents, _print, _publish, _view


def check_forecaster(forecaster: Any, sensors: Any) -> None:
    """Refuse a forecaster whose target or regressors are not registered sensors."""
    for field, name in [("sensor", forecaster.sensor)] + [
        (f"regressors[{i}]", r) for i, r in enumerate(forecaster.regressors)
    ]:
        if name not in sensors:
            raise InputError(
                f"sensor {name!r} is not registered; add it first ('flexstream add sensor')",
                f"forecaster {forecaster.name!r}: {field}",
            )


@click.command("forecaster")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def add_forecaster(file: str) -> None:
    """Register forecasters from a YAML/JSON FILE (one or a list).

    Fields: name, sensor (the target), regressors, holidays-country, site
    (latitude, longitude, tilt, azimuth: a PV clear-sky profile), model
    (lightgbm or seasonal-naive), max-forecast-horizon (e.g. P2D), resolution,
    train-period, retrain-frequency, forecast-frequency, debounce, quantiles
    (e.g. [0.1, 0.5, 0.9], the median included). Registering one again
    replaces it.
    """
    from schemas.documents import parse_model
    from schemas.forecaster import Forecaster

    docs = _documents(file)
    items = [
        parse_model(Forecaster, item, f"forecasters[{i}]" if len(docs) > 1 else "forecaster")
        for i, item in enumerate(docs)
    ]
    view = _view()
    for f in items:
        check_forecaster(f, view.sensors)
    n = _publish(items)
    click.echo(
        f"registered {n} forecaster{'s' if n != 1 else ''}: " + ", ".join(f.name for f in items)
    )


@click.command("forecasters")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show_forecasters(fmt: str) -> None:
    """List the registered forecasters."""
    from schemas.times import format_duration

    view = _view()
    rows = []
    for _, f in sorted(view.forecasters.items()):
        row = f.model_dump(mode="json", by_alias=True)
        if fmt == "table":
            row = {
                "name": f.name,
                "sensor": f.sensor,
                "model": f.model,
                "horizon": format_duration(f.max_forecast_horizon),
                "quantiles": ", ".join(f"{q:g}" for q in f.quantiles),
                "retrain": format_duration(f.retrain_frequency),
                "regressors": ", ".join(f.regressors),
                "features": ", ".join(
                    x
                    for x, on in (
                        ("calendar", True),
                        (f"holidays {f.holidays_country}", f.holidays_country),
                        ("clear-sky", f.site is not None),
                    )
                    if on
                ),
            }
        rows.append(row)
    columns = ["name", "sensor", "model", "horizon", "quantiles", "retrain", "regressors"]
    _print(rows, [*columns, "features"], fmt, "forecasters")
