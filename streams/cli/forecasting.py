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


ACCURACY_SQL = """
SELECT source, horizon_from, horizon_to, pairs, mae, wape, crps, naive_mae, skill,
       pinball_sum, events_from, events_to
FROM forecast_accuracy
WHERE sensor = {sensor:String}
ORDER BY source, horizon_from
"""


def accuracy_rows(rows: list[list], forecaster: str | None = None) -> list[dict]:
    """Rows of the ``forecast_accuracy`` view as printed: metrics per forecaster and bucket."""
    from streams.forecasting.scoring import BucketScore

    out = []
    for source, lo, hi, pairs, mae, wape, crps, naive, skill, pinball, first, last in rows:
        name = source.removeprefix("forecaster:")
        if forecaster is not None and name != forecaster:
            continue
        label = BucketScore(int(lo), int(hi)).label
        row = {
            "forecaster": name,
            "horizon": label,
            "pairs": int(pairs),
            "MAE": _num(mae),
            "WAPE": _num(wape),
            "CRPS": _num(crps),
            "naive MAE": _num(naive),
            "skill": _num(skill),
        }
        for q, total in sorted((pinball or {}).items(), key=lambda kv: float(kv[0])):
            row[f"pinball {q}"] = _num(float(total) / int(pairs))
        row["events"] = f"{str(first)[:16]} .. {str(last)[:16]}"
        out.append(row)
    return out


def _num(v: object) -> str:
    return "" if v is None else f"{float(v):.4g}"  # type: ignore[arg-type]


@click.command("forecasts")
@click.option("--sensor", required=True, help="The forecast sensor.")
@click.option("--forecaster", help="Only this forecaster (default: all of the sensor).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def show_forecasts(sensor: str, forecaster: str | None, fmt: str) -> None:
    """Print forecast accuracy of a sensor's forecasters per horizon bucket.

    From the ``forecast_accuracy`` view: pairs scored, MAE, WAPE, CRPS, pinball
    loss per quantile, and the skill against seasonal naive (1 - MAE / naive
    MAE; above 0 the forecaster beats it).
    """
    from connectors.settings import Settings
    from streams.sql.access import query_rows

    _, rows = query_rows(Settings(), ACCURACY_SQL, {"sensor": sensor})
    out = accuracy_rows(rows, forecaster)
    if not out and fmt == "table":
        click.echo(
            f"no scored forecasts of sensor {sensor!r} yet: scores appear once measurements "
            "of forecast events arrive"
        )
        return
    columns = list(dict.fromkeys(k for r in out for k in r))
    _print(out, columns, fmt, f"forecast accuracy of {sensor}")
