"""The demo site schedules its battery, EV charger and heat pump from prices and its forecasts.

Registers the site (the devices in one flex-model, scheduled jointly under the
site's connection capacity, building load and PV as inflexible devices; the heat
pump a coupling of an electricity port and a heat port whose coefficient is the
COP per hour, filling a heat buffer on the heat commodity that meets the
household's heat use) and two
forecasters, of the PV (with the site's clear-sky profile) and of the load
(with Dutch public holidays), publishes today's and tomorrow's day-ahead prices
and the current states of charge, waits for the worker's first forecasts (made
from the history just published), asks for a 24-hour schedule through the SDK,
and prints it: a table per device (hourly), the SOC path, which inputs came
from forecasts, and the cost against an unscheduled baseline (battery idle, EV
charging at full power on arrival until its target, the heat pump making each
hour's heat in that hour).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
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
HEAT_SENSORS = [
    Sensor(
        name=name,
        unit=unit,
        event_resolution=STEP if unit == "kW" else timedelta(0),
        timezone=SITE_TZ,
        description=description,
    )
    for name, unit, description in (
        ("demo-heat-pump", "kW", "Heat pump electric power"),
        ("demo-heat-pump-heat", "kW", "Heat pump heat output (production negative)"),
        ("demo-heat-buffer", "kW", "Heat into the hot-water buffer"),
        ("demo-heat-buffer-soc", "kWh", "Heat held in the hot-water buffer"),
    )
]
BATTERY = {"soc-min": 1.0, "soc-max": 10.0, "power": 5.0, "roundtrip": 0.9}
HEAT = {"power": 3.0, "soc-min": 2.0, "soc-max": 20.0, "soc": 8.0}
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


def heat_profile(start: datetime, hours: int = 25) -> tuple[datetime, np.ndarray, np.ndarray]:
    """Hourly COP and heat use (kW) from the hour of ``start``: a cool night, a mild afternoon.

    The COP follows the outdoor temperature (2.4 before dawn, 3.6 mid-afternoon);
    the heat use peaks in the morning and evening.
    """
    first = start.replace(minute=0, second=0, microsecond=0)
    local = np.array([(first + timedelta(hours=h)).astimezone(ZoneInfo(SITE_TZ)).hour
                      for h in range(hours)])  # fmt: skip
    cop = 3.0 + 0.6 * np.sin(2 * np.pi * (local - 9) / 24)
    use = 1.0 + 1.5 * np.exp(-(((local - 7) / 1.5) ** 2)) + 2.0 * np.exp(-(((local - 19) / 2) ** 2))
    return first, np.round(cop, 2), np.round(use, 2)


def _hourly(first: datetime, values: np.ndarray, unit: str | None) -> list[dict[str, Any]]:
    """One segment per hour from ``first``; bare numbers without a unit."""
    return [
        {
            "start": (first + timedelta(hours=h)).isoformat(),
            "duration": "PT1H",
            "value": float(v) if unit is None else f"{v} {unit}",
        }
        for h, v in enumerate(values)
    ]


def heat_devices(start: datetime) -> list[dict[str, Any]]:
    """The heat pump's two ports (electricity in, heat out at the hour's COP) and the buffer."""
    first, cop, use = heat_profile(start)
    return [
        {
            "sensor": "demo-heat-pump",
            "coupling": "demo-heat-pump",
            "consumption-capacity": f"{HEAT['power']} kW",
        },
        {
            "sensor": "demo-heat-pump-heat",
            "commodity": "heat",
            "coupling": "demo-heat-pump",
            "coupling-coefficient": _hourly(first, cop, None),
            "production-capacity": f"{HEAT['power'] * float(cop.max())} kW",
        },
        {
            "sensor": "demo-heat-buffer",
            "commodity": "heat",
            "state-of-charge": {"sensor": "demo-heat-buffer-soc"},
            "soc-min": f"{HEAT['soc-min']} kWh",
            "soc-max": f"{HEAT['soc-max']} kWh",
            "consumption-capacity": "15 kW",
            "production-capacity": "0 kW",
            "storage-efficiency": {"value": "98%", "resolution": "PT1H"},
            "soc-usage": _hourly(first, use, "kW"),
        },
    ]


def site_asset(target_time: datetime, start: datetime) -> Asset:
    """The demo site: battery, EV charger and heat pump, steered on day-ahead prices."""
    return Asset.model_validate(
        {
            "name": "demo-site",
            "description": (
                "Household with PV, a home battery, a V2G EV charger and a heat pump with a "
                "hot-water buffer"
            ),
            "flex-context": {
                "consumption-price": {"sensor": "demo-day-ahead"},
                "site-power-capacity": "17 kW",
                "inflexible-device-sensors": [{"sensor": "demo-load"}, {"sensor": "demo-pv"}],
                # Heat has no connection: the heat pump and the buffer balance each other.
                "commodities": [{"commodity": "heat"}],
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
                *heat_devices(start),
            ],
        }
    )


def _wait(settings: Settings, expected: int, believed: datetime, timeout: float = 60) -> None:
    """Wait until the worker has stored the inputs (and so holds them in its belief state)."""
    from connectors.clickhouse import in_list
    from schemas.times import engine_time
    from streams.sql.access import query_rows

    sources, params = in_list("source", ("demo-epex", "demo-ev-api", "demo-heat-api"))
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
        [*SENSORS, *EV_SENSORS, *HEAT_SENSORS, site_asset(target, start), *FORECASTERS],
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
        for sensor, soc, source in (
            ("demo-ev-soc", EV["soc"], "demo-ev-api"),
            ("demo-heat-buffer-soc", HEAT["soc"], "demo-heat-api"),
        ):
            client.publish_reading(
                sensor, start, soc, resolution=timedelta(0), source=source, belief_time=believed
            )
        client.flush()
        _wait(settings, 48 + 2, believed)
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
        if sensor == "demo-heat-pump-heat":
            continue  # the heat pump's heat port: shown with its electricity below
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
    hp, heat = np.asarray(by["demo-heat-pump"].values), np.asarray(by["demo-heat-pump-heat"].values)
    echo(
        f"heat pump: {np.sum(hp) * dt:.1f} kWh of electricity gave {-np.sum(heat) * dt:.1f} kWh "
        f"of heat (COP {-np.sum(heat) / max(np.sum(hp), 1e-9):.2f} on average)"
    )
    electric = ("demo-battery", "demo-ev", "demo-heat-pump")
    scheduled = inflex + sum(np.asarray(by[d].values) for d in electric)
    baseline = inflex + _uncontrolled_ev(n, dt) + _uncontrolled_heat_pump(start, n)
    cost = float(np.sum(scheduled * price * dt) / 1000)
    base = float(np.sum(baseline * price * dt) / 1000)
    echo(
        f"cost over 24 h: scheduled {cost:.2f} EUR vs unscheduled baseline {base:.2f} EUR "
        f"(battery idle, EV charging at full power until {EV['target']:g} kWh, heat pump "
        "making each hour's heat in that hour): "
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


def _uncontrolled_heat_pump(start: datetime, n: int) -> np.ndarray:
    """The heat pump without a schedule: each step's heat use made in that step (kW electric)."""
    first, cop, use = heat_profile(start)
    hours = [int((start + k * STEP - first) / timedelta(hours=1)) for k in range(n)]
    return np.array([use[h] / cop[h] for h in hours])
