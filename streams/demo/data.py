"""The demo site's sample data, made in code (seeded, so every run is the same).

A household-sized site in the Netherlands: PV (8 kWp), a building load, a
10 kWh / 5 kW battery that soaks up PV surplus and covers the evening, the net
power at the grid connection, the battery's state of charge, and hourly
day-ahead prices published the day before at 11:00 UTC. Power: consumption
positive, production negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from schemas.beliefs import Sensor

STEP = timedelta(minutes=15)
SITE_TZ = "Europe/Amsterdam"

SENSORS = [
    Sensor(
        name="demo-pv",
        unit="kW",
        event_resolution=STEP,
        timezone=SITE_TZ,
        description="PV inverter output (production negative)",
    ),
    Sensor(
        name="demo-load",
        unit="kW",
        event_resolution=STEP,
        timezone=SITE_TZ,
        description="Building consumption",
    ),
    Sensor(
        name="demo-battery",
        unit="kW",
        event_resolution=STEP,
        timezone=SITE_TZ,
        description="Battery power (charging positive)",
    ),
    Sensor(
        name="demo-battery-soc",
        unit="kWh",
        event_resolution=timedelta(0),
        timezone=SITE_TZ,
        description="Battery state of charge",
    ),
    Sensor(
        name="demo-grid",
        unit="kW",
        event_resolution=STEP,
        timezone=SITE_TZ,
        description="Net power at the grid connection",
    ),
    Sensor(
        name="demo-day-ahead",
        unit="EUR/MWh",
        event_resolution=timedelta(hours=1),
        timezone=SITE_TZ,
        description="Day-ahead prices, NL bidding zone",
    ),
]


@dataclass(frozen=True)
class Series:
    """One regular series for one sensor."""

    sensor: str
    start: datetime
    step: timedelta
    values: np.ndarray
    source: str
    belief_time: datetime | None = None


def demo_window(days: int, today: datetime | None = None) -> tuple[datetime, datetime]:
    """The last ``days`` full UTC days before ``today`` (measurements lie in the past)."""
    today = today or datetime.now(UTC)
    end = today.replace(hour=0, minute=0, second=0, microsecond=0)
    return end - timedelta(days=days), end


def make_site(start: datetime, days: int, seed: int = 7) -> list[Series]:
    """Meter readings, state of charge and day-ahead prices for ``days`` from ``start``."""
    rng = np.random.default_rng(seed)
    n = days * 96
    hours = (np.arange(n) * 0.25 + 0.125) % 24  # mid-step, UTC (about CET - 1)
    day = np.arange(n) // 96
    # PV: a bell between 06:00 and 18:00 UTC, clouds per day and per step.
    clear = np.clip(np.sin(np.pi * (hours - 6.0) / 12.0), 0, None) ** 1.5
    cloud_day = rng.uniform(0.35, 1.0, days)[day]
    cloud_step = np.clip(rng.normal(1.0, 0.12, n), 0.4, 1.15)
    pv = -np.round(8.0 * clear * cloud_day * cloud_step, 3)
    # Load: base, morning and evening peaks, noise.
    load = (
        0.45
        + 0.9 * np.exp(-((hours - 6.5) ** 2) / 1.5)
        + 1.8 * np.exp(-((hours - 17.5) ** 2) / 3.0)
        + np.abs(rng.normal(0, 0.12, n))
    )
    load = np.round(load, 3)
    # Battery: charge from PV surplus, discharge in the evening, within 5 kW and 10 kWh.
    cap, pmax, eff = 10.0, 5.0, 0.95
    soc = np.empty(n + 1)
    soc[0] = 2.0
    batt = np.zeros(n)
    for t in range(n):
        surplus = -(pv[t] + load[t])
        if surplus > 0:
            p = min(surplus, pmax, (cap - soc[t]) / (0.25 * eff))
        elif 16.0 <= hours[t] < 22.0:
            p = -min(load[t] + pv[t], pmax, soc[t] * eff / 0.25)
        else:
            p = 0.0
        batt[t] = round(p, 3)
        soc[t + 1] = soc[t] + (batt[t] * eff if batt[t] > 0 else batt[t] / eff) * 0.25
    grid = np.round(pv + load + batt, 3)
    # Day-ahead prices per hour: night low, morning and evening peaks, a solar dip.
    nh = days * 24
    h = np.arange(nh) % 24
    level = rng.uniform(70, 110, days)[np.arange(nh) // 24]
    price = (
        level
        + 45 * np.exp(-((h - 7) ** 2) / 2.0)
        + 70 * np.exp(-((h - 18) ** 2) / 3.0)
        - 95 * np.exp(-((h - 12) ** 2) / 5.0)
        + rng.normal(0, 6, nh)
    )
    price = np.round(price, 2)
    out = [
        Series("demo-pv", start, STEP, pv, "demo-meter"),
        Series("demo-load", start, STEP, load, "demo-meter"),
        Series("demo-battery", start, STEP, batt, "demo-meter"),
        Series("demo-grid", start, STEP, grid, "demo-meter"),
        Series("demo-battery-soc", start, STEP, np.round(soc[:-1], 3), "demo-meter"),
    ]
    for d in range(days):
        day_start = start + timedelta(days=d)
        published = day_start - timedelta(hours=13)  # 11:00 UTC the day before
        out.append(
            Series(
                "demo-day-ahead",
                day_start,
                timedelta(hours=1),
                price[d * 24 : (d + 1) * 24],
                "demo-epex",
                belief_time=published,
            )
        )
    return out
