"""The demo site schedules its battery and EV charger from streamed prices and its own forecasts.

Registers the site (both devices in one flex-model, scheduled jointly under the
site's connection capacity, building load and PV as inflexible devices) and two
forecasters, of the PV (with the site's clear-sky profile) and of the load
(with Dutch public holidays), publishes today's and tomorrow's day-ahead prices
and the current states of charge, waits for the worker's first forecasts (made
from the history just published), asks for a 24-hour schedule through the SDK,
and prints it: a table per device (hourly), the SOC path, which inputs came
from forecasts, and the cost against an unscheduled baseline (battery idle, EV
charging at full power on arrival until its target).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from connectors import registry
from connectors.kafka import ConfirmingProducer
from connectors.sdk import FlexStreamClient, Schedule
from connectors.settings import Settings
from schemas.assets import Asset
from schemas.beliefs import Sensor
from schemas.errors import InfraError
from schemas.forecaster import Forecaster
from streams.demo.data import SENSORS, SITE_TZ, STEP, Series, make_site
from streams.scheduling.agent import floor_time

EV_SENSORS = [
    Sensor(
        name="demo-ev",
        unit="kW",
        event_resolution=STEP,
        timezone=SITE_TZ,
        description="EV charger power (charging positive, V2G negative)",
    ),
    Sensor(
        name="demo-ev-soc",
        unit="kWh",
        event_resolution=timedelta(0),
        timezone=SITE_TZ,
        description="EV state of charge",
    ),
]
BATTERY = {"soc-min": 1.0, "soc-max": 10.0, "power": 5.0, "roundtrip": 0.9}
EV = {"soc-max": 60.0, "target": 50.0, "charge": 11.0, "discharge": 5.0, "soc": 22.0}


def _num(value: float, digits: int) -> str:
    """``value`` with ``digits`` decimals; a solver's -1e-9 prints as 0, not -0."""
    return f"{round(value, digits) + 0.0:.{digits}f}"


#: The demo's forecasters: PV with the site's clear-sky profile, load with NL holidays.
FORECASTERS = [
    Forecaster.model_validate(
        {
            "name": "demo-pv-ahead",
            "sensor": "demo-pv",
            "site": {"latitude": 52.37, "longitude": 4.9, "tilt": 35, "azimuth": 180},
            "max-forecast-horizon": "P2D",
            "train-period": "P30D",
            "retrain-frequency": "P1D",
            "forecast-frequency": "PT1H",
            "quantiles": [0.1, 0.5, 0.9],
            "description": "PV forecast: LightGBM quantiles on clear sky, lags and calendar",
        }
    ),
    Forecaster.model_validate(
        {
            "name": "demo-load-ahead",
            "sensor": "demo-load",
            "holidays-country": "NL",
            "max-forecast-horizon": "P2D",
            "train-period": "P30D",
            "retrain-frequency": "P1D",
            "forecast-frequency": "PT1H",
            "quantiles": [0.1, 0.5, 0.9],
            "description": "Load forecast: LightGBM quantiles on lags, calendar and holidays",
        }
    ),
]


def site_asset(target_time: datetime) -> Asset:
    """The demo site: battery and EV charger, steered on day-ahead prices."""
    return Asset.model_validate(
        {
            "name": "demo-site",
            "description": "Household with PV, a home battery and a V2G EV charger",
            "flex-context": {
                "consumption-price": {"sensor": "demo-day-ahead"},
                "site-power-capacity": "17 kW",
                "inflexible-device-sensors": [{"sensor": "demo-load"}, {"sensor": "demo-pv"}],
            },
            "flex-model": [
                {
                    "sensor": "demo-battery",
                    "soc-at-start": {"sensor": "demo-battery-soc"},
                    "soc-min": f"{BATTERY['soc-min']} kWh",
                    "soc-max": f"{BATTERY['soc-max']} kWh",
                    "power-capacity": f"{BATTERY['power']} kW",
                    "roundtrip-efficiency": f"{BATTERY['roundtrip'] * 100:g}%",
                },
                {
                    "sensor": "demo-ev",
                    "soc-at-start": {"sensor": "demo-ev-soc"},
                    "soc-max": f"{EV['soc-max']} kWh",
                    "soc-targets": [
                        {"datetime": target_time.isoformat(), "value": f"{EV['target']} kWh"}
                    ],
                    "consumption-capacity": f"{EV['charge']} kW",
                    "production-capacity": f"{EV['discharge']} kW",
                    "roundtrip-efficiency": "90%",
                },
            ],
        }
    )


def _wait(settings: Settings, expected: int, believed: datetime, timeout: float = 60) -> None:
    """Wait until the worker has stored the inputs (and so holds them in its belief state)."""
    from connectors.clickhouse import in_list
    from schemas.times import engine_time
    from streams.sql.access import query_rows

    sources, params = in_list("source", ("demo-epex", "demo-ev-api"))
    sql = (
        f"SELECT (SELECT count() FROM beliefs FINAL WHERE source IN {sources} AND belief_time >= "
        "{believed:DateTime64(6, 'UTC')}), "
        "(SELECT count() FROM assets FINAL WHERE name = {asset:String})"
    )
    # Whole seconds, as the inputs' belief times.
    params |= {"believed": engine_time(believed.replace(microsecond=0)), "asset": "demo-site"}
    deadline = time.monotonic() + timeout
    while True:
        landed, assets = query_rows(settings, sql, params)[1][0]
        if landed >= expected and assets:
            return
        if time.monotonic() > deadline:
            raise InfraError(f"only {landed} of {expected} inputs landed within {timeout:.0f} s")
        time.sleep(0.2)


def _next_morning(now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(SITE_TZ))
    morning = (local + timedelta(days=1)).replace(hour=7, minute=0, second=0, microsecond=0)
    return morning.astimezone(UTC)


def run_schedule_demo(settings: Settings, bootstrap: str, echo: Callable = print) -> Schedule:
    """Register, publish, request and print; return the battery's schedule."""
    now = datetime.now(UTC)
    start = floor_time(now, STEP)
    day0 = start.replace(hour=0, minute=0)
    target = _next_morning(now)
    conf = settings.kafka.client_config(bootstrap)
    producer = ConfirmingProducer(conf)
    registry.publish(
        producer,
        settings.kafka.topic("registry"),
        [*SENSORS, *EV_SENSORS, site_asset(target), *FORECASTERS],
    )
    del producer  # confirmed; no client may outlive the broker the demo stops
    # Today's and tomorrow's prices, believed now; load and PV come from the forecasters.
    future = make_site(day0, 2, seed=11)
    with FlexStreamClient(bootstrap, settings=settings) as client:
        believed = now - timedelta(seconds=1)
        for s in future:
            if s.sensor == "demo-day-ahead":
                client.publish_readings(
                    s.sensor,
                    s.start,
                    s.step,
                    s.values,
                    source="demo-epex",
                    belief_time=believed,
                    topic="price",
                )
        client.publish_reading(
            "demo-ev-soc",
            start,
            EV["soc"],
            resolution=timedelta(0),
            source="demo-ev-api",
            belief_time=believed,
        )
        client.flush()
        _wait(settings, 48 + 1, believed)
        t = time.monotonic()
        forecasts = _wait_forecasts(settings, start, believed)
        echo(
            f"published prices for {day0:%Y-%m-%d} and the next day and the states of charge; "
            f"forecasters {', '.join(f.name for f in FORECASTERS)} trained and forecast "
            f"load and PV in {time.monotonic() - t:.1f} s; requesting a 24-hour schedule"
        )
        schedules = client.trigger_and_get_schedule(
            "demo-site", start, timedelta(hours=24), STEP, timeout=120
        )
    by = {s.sensor: s for s in schedules}
    prices = [x for x in future if x.sensor == "demo-day-ahead"]
    _print(by, [*prices, *forecasts], start, echo)
    return by["demo-battery"]


def _wait_forecasts(
    settings: Settings, start: datetime, believed: datetime, timeout: float = 180
) -> list[Series]:
    """Wait for a 24-hour median forecast of each forecaster made since ``believed``."""
    from schemas.times import engine_time
    from streams.sql.access import query_rows

    sql = (
        "SELECT sensor, groupArray((toUnixTimestamp(event_start), event_value)) FROM ("
        " SELECT sensor, event_start, argMax(event_value, belief_time) AS event_value"
        " FROM beliefs WHERE source = {source:String} AND cumulative_probability = 0.5"
        " AND belief_time >= {believed:DateTime64(6, 'UTC')}"
        " AND event_start >= {start:DateTime64(6, 'UTC')}"
        " GROUP BY sensor, event_start) GROUP BY sensor"
    )
    deadline = time.monotonic() + timeout
    out: list[Series] = []
    for f in FORECASTERS:
        params = {
            "source": f.source,
            "believed": engine_time(believed.replace(microsecond=0)),
            "start": engine_time(start),
        }
        while True:
            rows = query_rows(settings, sql, params)[1]
            points = sorted(rows[0][1]) if rows else []
            if len(points) >= 96:
                values = np.array([float(v) for _, v in points[:96]])
                out.append(Series(f.sensor, start, STEP, values, f.source))
                break
            if time.monotonic() > deadline:
                raise InfraError(
                    f"forecaster {f.name} made no forecast within {timeout:.0f} s; "
                    "see the worker's log"
                )
            time.sleep(0.3)
    return out


def _print(by: dict[str, Schedule], future: list, start: datetime, echo: Callable) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 160)
    first = next(iter(by.values()))
    echo(
        f"schedule {first.request_id}: status {first.status}, solved in "
        f"{first.solver_time_ms:.0f} ms"
    )
    if not first.ok:
        echo(f"no schedule: {first.message}")
        return
    if first.message:
        echo(first.message)
    n = len(first.values)
    price = _on_grid(future, "demo-day-ahead", start, n)
    inflex = _on_grid(future, "demo-load", start, n) + _on_grid(future, "demo-pv", start, n)
    for sensor, s in by.items():
        table = Table(
            "hour (local)",
            "mean power kW",
            "SOC at end kWh",
            "price EUR/MWh",
            title=f"{sensor}: schedule per hour",
        )
        tz = ZoneInfo(SITE_TZ)
        for h in range(0, n, 4):
            t = s.timestamps[h].astimezone(tz)
            table.add_row(
                f"{t:%a %H:%M}",
                f"{np.mean(s.values[h : h + 4]):+.2f}",
                _num(s.state_of_charge[min(h + 4, n)], 1) if s.state_of_charge else "",
                f"{np.mean(price[h : h + 4]):.1f}",
            )
        console.print(table)
        if s.state_of_charge:
            path = " ".join(_num(v, 0) for v in s.state_of_charge[::8])
            echo(f"{sensor} SOC every 2 h (kWh): {path}")
    dt = STEP.total_seconds() / 3600
    scheduled = inflex + sum(np.asarray(s.values) for s in by.values())
    baseline = inflex + _uncontrolled_ev(n, dt)
    cost = float(np.sum(scheduled * price * dt) / 1000)
    base = float(np.sum(baseline * price * dt) / 1000)
    echo(
        f"cost over 24 h: scheduled {cost:.2f} EUR vs unscheduled baseline {base:.2f} EUR "
        f"(battery idle, EV charging at full power until {EV['target']:g} kWh): "
        f"saving {base - cost:.2f} EUR"
    )


def _on_grid(series: list, sensor: str, start: datetime, n: int) -> np.ndarray:
    """Values of ``sensor`` (possibly in several series) at each step from ``start``."""
    out = np.full(n, np.nan)
    for s in (x for x in series if x.sensor == sensor):
        for k in range(n):
            i = int((start + k * STEP - s.start) / s.step)
            if 0 <= i < len(s.values):
                out[k] = s.values[i]
    return out


def _uncontrolled_ev(n: int, dt: float) -> np.ndarray:
    out = np.zeros(n)
    need = (EV["target"] - EV["soc"]) / np.sqrt(0.9)
    for k in range(n):
        if need <= 0:
            break
        p = min(EV["charge"], need / dt)
        out[k] = p
        need -= p * dt
    return out
