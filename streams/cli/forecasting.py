"""``flexstream add forecaster``, ``show forecasters``, ``show forecasts``: forecasters.

A forecaster lives on the registry topic like sensors and assets (kind
``forecaster``); the worker's forecasting feature trains it and publishes its
forecasts. ``show forecasts`` prints their accuracy from ClickHouse.
"""

from __future__ import annotations

import json
from typing import Any

import click

from schemas.errors import InputError
from streams.cli.registry import _documents, _print, _publish, _view


def check_forecaster(forecaster: Any, sensors: Any) -> None:
    """Refuse a forecaster with unregistered sensors, or a resolution other than its target's."""
    for field, name in [("sensor", forecaster.sensor)] + [
        (f"regressors[{i}]", r) for i, r in enumerate(forecaster.regressors)
    ]:
        if name not in sensors:
            raise InputError(
                f"sensor {name!r} is not registered; add it first ('flexstream add sensor')",
                f"forecaster {forecaster.name!r}: {field}",
            )
    problem = forecaster.resolution_problem(sensors[forecaster.sensor].event_resolution)
    if problem:
        raise InputError(problem, f"forecaster {forecaster.name!r}: resolution")


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


@click.group("forecast")
def forecast_group() -> None:
    """Forecasting tools: walk-forward backtests of registered forecasters."""


@forecast_group.command("backtest")
@click.option("--forecaster", "name", required=True, help="A registered forecaster.")
@click.option("--start", required=True, help="First forecast time, ISO 8601 with offset.")
@click.option("--end", required=True, help="End of the backtest, ISO 8601 with offset.")
@click.option("--every", help="Time between forecasts (ISO 8601); default forecast-frequency.")
@click.option("--retrain-frequency", help="Time between trainings; default the forecaster's.")
@click.option(
    "--output",
    default="backtest.html",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Chart of measured values, median and seasonal naive: F.html, F.png or F.svg.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
def backtest_command(
    name: str,
    start: str,
    end: str,
    every: str | None,
    retrain_frequency: str | None,
    output: str,
    fmt: str,
) -> None:
    """Walk-forward backtest of forecaster NAME over the history, belief-time correct.

    Each forecast made at time T uses only beliefs believed by T, with a model
    trained at T on the history as believed then. Prints MAE, WAPE, CRPS,
    pinball loss and skill against seasonal naive per horizon bucket, and
    saves a chart.
    """
    from datetime import timedelta

    from schemas.times import parse_duration, to_us
    from streams.cli.charts import build_chart, save_chart
    from streams.forecasting.backtest import backtest
    from streams.forecasting.features import FeatureSpec
    from streams.reports.batch import parse_time

    t0, t1 = parse_time(start, "--start"), parse_time(end, "--end")
    if t1 <= t0:
        raise InputError("--end must be after --start", "--end")
    view = _view()
    forecaster = view.forecasters.get(name)
    if forecaster is None:
        raise InputError(
            f"forecaster {name!r} is not registered ('flexstream show forecasters')", "--forecaster"
        )
    sensor = view.sensors.get(forecaster.sensor)
    if sensor is None:
        raise InputError(f"its sensor {forecaster.sensor!r} is not registered", "--forecaster")
    step_every = parse_duration(every, "--every", positive=True) if every else None
    retrain = (
        parse_duration(retrain_frequency, "--retrain-frequency", positive=True)
        if retrain_frequency
        else forecaster.retrain_frequency
    )
    spec = FeatureSpec.of(forecaster, sensor)
    hist = _backtest_history(forecaster, t0 - forecaster.train_period, t1)
    if not len(hist.target):
        raise InputError(
            f"no measured beliefs of {forecaster.sensor!r} between {t0 - forecaster.train_period} "
            f"and {t1}; publish history first",
            "--start",
        )
    us = timedelta(microseconds=1)
    result = backtest(
        spec,
        forecaster.quantiles,
        forecaster.model,
        hist,
        to_us(t0),
        to_us(t1),
        (step_every or forecaster.forecast_frequency) // us,
        retrain // us,
        forecaster.train_period // us,
    )
    if not result.forecasts:
        raise InputError(
            "not enough history before --start to train; start later or publish more",
            "--start",
        )
    rows = []
    for b in result.scores:
        row = {"horizon": b.label, "pairs": b.n}
        row.update({k: _num(v) for k, v in b.metrics().items()})
        rows.append(row)
    if fmt == "json":
        click.echo(json.dumps({"forecaster": name, "scores": rows}, indent=2))
    else:
        _print(rows, list(dict.fromkeys(k for r in rows for k in r)), fmt, f"backtest of {name}")
        click.echo(
            f"{len(result.forecasts)} forecasts, {result.trainings} trainings "
            f"({result.train_seconds:.1f} s training, {result.forecast_seconds:.1f} s forecasting)"
        )
    chart = build_chart(
        {forecaster.sensor: _chart_frame(forecaster, hist, result, t0, t1, spec.step_us)},
        {forecaster.sensor: sensor.unit},
        title=f"backtest of {name}: measured, median forecast (latest made), seasonal naive",
    )
    click.echo(f"wrote {save_chart(chart, output)}", err=fmt == "json")


def _backtest_history(forecaster: Any, lo: Any, hi: Any) -> Any:
    """The measured beliefs of the forecaster's target and regressors, through the store."""
    from datetime import UTC, datetime, timedelta

    from connectors.settings import Settings
    from streams.forecasting.features import Histories
    from streams.forecasting.running import FEATURE_HISTORY, history_of, history_query
    from streams.sql.access import query_rows

    settings = Settings()
    known = datetime.now(UTC)
    hi = hi + forecaster.max_forecast_horizon + timedelta(days=1)
    got = {}
    for name in [forecaster.sensor, *forecaster.regressors]:
        sql, params = history_query(
            settings.clickhouse.database, name, lo - FEATURE_HISTORY, hi, known
        )
        got[name] = history_of(query_rows(settings, sql, params)[1])
    return Histories(got.pop(forecaster.sensor), got)


def _chart_frame(forecaster: Any, hist: Any, result: Any, t0: Any, t1: Any, step_us: int) -> Any:
    """A beliefs frame of the measured values, the medians and the naive, for the chart."""
    import numpy as np
    import pandas as pd

    from schemas.times import to_us

    lo, hi = to_us(t0), to_us(t1)
    parts = []
    sel = (hist.target.event_start >= lo) & (hist.target.event_start < hi)
    parts.append(
        (
            "measured",
            hist.target.event_start[sel],
            hist.target.belief_time[sel],
            hist.target.value[sel],
        )
    )
    for f in result.forecasts:
        keep = f.event_start_us < hi
        made = np.full(int(keep.sum()), f.made_at_us)
        parts.append((f"{forecaster.source} median", f.event_start_us[keep], made, f.median[keep]))
        parts.append(("seasonal naive", f.event_start_us[keep], made, f.naive[keep]))
    res = pd.Timedelta(microseconds=step_us)
    frames = [
        pd.DataFrame(
            {
                "event_start": pd.to_datetime(starts, unit="us", utc=True),
                "belief_time": pd.to_datetime(made, unit="us", utc=True),
                "source": source,
                "cumulative_probability": 0.5,
                "event_value": values,
                "event_resolution": res,
            }
        )
        for source, starts, made, values in parts
    ]
    return pd.concat(frames, ignore_index=True)
