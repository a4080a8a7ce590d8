"""Model builders shared by the tests and the benchmark (as linopy's benchmarks/models).

Deterministic for a given seed; all times aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from schemas.flex_problem import SiteProblem, StorageDevice, TimeGrid

START = datetime(2024, 5, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)


def day_ahead_prices(n: int, dt_hours: float, seed: int = 0) -> np.ndarray:
    """Prices in EUR/kWh with a daily shape, noise and a few negative hours."""
    rng = np.random.default_rng(seed)
    hours = np.arange(n) * dt_hours
    shape = (
        0.10 + 0.06 * np.sin(2 * np.pi * (hours - 9) / 24) + 0.04 * np.sin(4 * np.pi * hours / 24)
    )
    prices = shape + rng.normal(0.0, 0.015, n)
    prices[rng.random(n) < 0.03] -= 0.15
    return np.round(prices, 5)


def battery_problem(n: int, resolution: timedelta = QUARTER, seed: int = 0) -> SiteProblem:
    """One 200 kWh / 100 kW battery with losses, under day-ahead prices."""
    grid = TimeGrid(START, resolution, n)
    bat = StorageDevice(
        "battery",
        n,
        soc_at_start=100.0,
        soc_min=10.0,
        soc_max=200.0,
        consumption_capacity=100.0,
        production_capacity=100.0,
        charging_efficiency=0.95,
        discharging_efficiency=0.95,
        storage_efficiency=0.9999,
    )
    return SiteProblem(grid, [bat], day_ahead_prices(n, grid.dt_hours, seed))


def battery_request(n: int, seed: int = 0) -> dict[str, Any]:
    """The JSON (already decoded) for ``battery_problem`` at 15-minute steps."""
    prices = day_ahead_prices(n, 0.25, seed)
    segments = [
        {
            "start": (START + k * QUARTER).isoformat(),
            "duration": "PT15M",
            "value": f"{p * 1000:.3f} EUR/MWh",
        }
        for k, p in enumerate(prices)
    ]
    return {
        "flex_model": {
            "sensor": "battery",
            "soc-at-start": "100 kWh",
            "soc-min": "10 kWh",
            "soc-max": "200 kWh",
            "power-capacity": "100 kW",
            "charging-efficiency": "95%",
            "discharging-efficiency": "95%",
            "storage-efficiency": "99.99%",
        },
        "flex_context": {"consumption-price": segments},
        "start": START.isoformat(),
        "duration": f"PT{n * 15}M",
        "resolution": "PT15M",
    }


def ev_fleet_problem(
    n_evs: int, n: int = 192, resolution: timedelta = QUARTER, seed: int = 0
) -> SiteProblem:
    """EVs (every other one V2G) plugged in overnight, under a shared site capacity.

    Each EV arrives in the evening, leaves in the morning with at least its
    required SOC (a hard minimum at departure), on each day of the window. The
    site's connection (a hard ``site-power-capacity``) is smaller than the sum of
    the chargers, so the EVs compete for it; an office load takes part of it.
    """
    rng = np.random.default_rng(seed)
    grid = TimeGrid(START, resolution, n)
    dt = grid.dt_hours
    steps_per_day = int(round(24 / dt))
    hours = np.arange(n) * dt
    devices = []
    for i in range(n_evs):
        power = 11.0
        cap = np.zeros(n)
        minima = np.full(n + 1, np.nan)
        for day in range(int(np.ceil(n / steps_per_day))):
            arrive = day * steps_per_day + int((17 + rng.uniform(0, 3)) / dt)
            leave = day * steps_per_day + int((30 + rng.uniform(0, 2)) / dt)
            a, b = min(arrive, n), min(leave, n)
            cap[a:b] = power
            if b < n:
                minima[b] = rng.uniform(35.0, 55.0)
        v2g = i % 2 == 0
        away = (cap == 0) & (hours % 24 >= 7) & (hours % 24 < 17)
        devices.append(
            StorageDevice(
                f"ev-{i:03d}",
                n,
                soc_at_start=rng.uniform(20.0, 40.0),
                soc_min=5.0,
                soc_max=60.0,
                soc_minima=minima,
                consumption_capacity=cap,
                production_capacity=cap if v2g else 0.0,
                charging_efficiency=0.92,
                discharging_efficiency=0.92,
                # Driving: away from 7 to 17 h, using 1.5 kW (15 kWh a day).
                soc_usage=np.where(away, 1.5, 0.0),
            )
        )
    office = 40.0 * n_evs / 10 * (1 + np.sin(2 * np.pi * (hours - 6) / 24).clip(0))
    return SiteProblem(
        grid,
        devices,
        day_ahead_prices(n, dt, seed),
        site_power_capacity=6.0 * n_evs + office.max(),
        inflexible_power=office,
    )


def v2g_negative_evening_problem(
    n_evs: int, n: int = 192, resolution: timedelta = QUARTER, seed: int = 0
) -> SiteProblem:
    """``ev_fleet_problem`` with every evening from 18 to 22 h at -50 EUR/MWh.

    Importing then pays, so a relaxation without charge/discharge binaries lets
    V2G EVs that are full charge and discharge at once to waste energy: the case
    where binaries are needed and the LP relaxation is not exact.
    """
    problem = ev_fleet_problem(n_evs, n, resolution, seed)
    hours = np.arange(n) * problem.grid.dt_hours
    evening = (hours % 24 >= 18) & (hours % 24 < 22)
    problem.consumption_price[evening] = -0.05
    problem.production_price[evening] = -0.05
    return problem


def battery_fleet_problem(
    n_batteries: int, n: int = 192, resolution: timedelta = QUARTER, seed: int = 0
) -> SiteProblem:
    """Batteries of different sizes behind one connection, under day-ahead prices.

    Each battery (50-500 kWh, 0.5C, 90-97 % each way) must end the window at
    least half full; the site's connection carries 40 % of the batteries' power,
    so they compete for it.
    """
    rng = np.random.default_rng(seed)
    grid = TimeGrid(START, resolution, n)
    devices = []
    total_power = 0.0
    for i in range(n_batteries):
        size = float(rng.uniform(50.0, 500.0))
        power = size / 2
        total_power += power
        eff = float(rng.uniform(0.90, 0.97))
        minima = np.full(n + 1, np.nan)
        minima[n] = size / 2
        devices.append(
            StorageDevice(
                f"battery-{i:03d}",
                n,
                soc_at_start=float(rng.uniform(0.2, 0.8)) * size,
                soc_min=0.1 * size,
                soc_max=size,
                soc_minima=minima,
                consumption_capacity=power,
                production_capacity=power,
                charging_efficiency=eff,
                discharging_efficiency=eff,
                storage_efficiency=0.9999,
            )
        )
    return SiteProblem(
        grid,
        devices,
        day_ahead_prices(n, grid.dt_hours, seed),
        site_power_capacity=0.4 * total_power,
    )


def _segments(values: np.ndarray, unit: str) -> list[dict]:
    """One 15-minute segment per value from START, as a FlexMeasures user writes a series."""
    starts = [(START + k * QUARTER).isoformat() for k in range(len(values))]
    # A bare number (a ratio such as a COP) as a JSON number, a quantity as text.
    texts = [round(float(v), 4) if not unit else f"{v:.4g} {unit}" for v in values]
    pairs = zip(starts, texts, strict=True)
    return [{"start": s, "duration": "PT15M", "value": v} for s, v in pairs]


def heat_site_request(n: int = 192, seed: int = 0) -> dict[str, Any]:
    """A home with a heat pump and heat buffer, a battery and a V2G EV, at 15-minute steps (JSON).

    The heat pump (4 kW) is a coupling of an electricity port and a heat port
    whose coefficient is the COP per step (2 to 4, following a daily outdoor
    temperature); the buffer (30 kWh, losing 1% per hour) meets a heat use of
    1.5 to 4.5 kW. Battery 20 kWh / 10 kW; the EV must reach 40 kWh by three
    quarters of the window. All behind a 25 kW connection under day-ahead prices.
    """
    hours = np.arange(n) * 0.25
    daily = np.sin(2 * np.pi * (hours - 9) / 24)
    prices = day_ahead_prices(n, 0.25, seed) * 1000
    cop = 3.0 + 1.0 * daily
    heat_use = 3.0 - 1.5 * daily
    target = START + (3 * n // 4) * QUARTER
    return {
        "flex_model": [
            {"sensor": "heat-pump", "coupling": "heat-pump", "consumption-capacity": "4 kW"},
            {
                "sensor": "heat-pump-heat",
                "commodity": "heat",
                "coupling": "heat-pump",
                "coupling-coefficient": _segments(cop, ""),
                "production-capacity": "20 kW",
            },
            {
                "sensor": "heat-buffer",
                "commodity": "heat",
                "soc-at-start": "15 kWh",
                "soc-min": "2 kWh",
                "soc-max": "30 kWh",
                "consumption-capacity": "20 kW",
                "production-capacity": "0 kW",
                "storage-efficiency": {"value": "99%", "resolution": "PT1H"},
                "soc-usage": _segments(heat_use, "kW"),
            },
            {
                "sensor": "battery",
                "soc-at-start": "10 kWh",
                "soc-max": "20 kWh",
                "power-capacity": "10 kW",
                "roundtrip-efficiency": "90%",
            },
            {
                "sensor": "ev",
                "soc-at-start": "12 kWh",
                "soc-max": "60 kWh",
                "soc-targets": [{"datetime": target.isoformat(), "value": "40 kWh"}],
                "consumption-capacity": "11 kW",
                "production-capacity": "5 kW",
                "roundtrip-efficiency": "90%",
            },
        ],
        "flex_context": {
            "consumption-price": _segments(prices, "EUR/MWh"),
            "site-power-capacity": "25 kW",
        },
        "start": START.isoformat(),
        "duration": f"PT{n * 15}M",
        "resolution": "PT15M",
    }


def portfolio_request(n_sites: int, n: int = 96, seed: int = 0) -> dict[str, Any]:
    """A VPP document: ``n_sites`` sites, each a battery and an EV, toward one market.

    Per site (seeded, varied): a battery of 50-300 kWh at 0.25-0.5C with a
    round-trip efficiency of 85-95 % that must end at least as full as it
    starts; an EV charger (7.4, 11 or 22 kW, every third one V2G) whose car
    (40-80 kWh) is plugged in overnight at 40-60 %, must leave at 6-9 h at 80 %
    (a target), drives away 20 % of its battery and is back at 17-20 h (while
    away the charger takes nothing: capacity segments); an office load of 5-40 kW and a
    connection of 1.5 times the devices' power. The portfolio sells its position
    day-ahead: a commitment to a baseline (the sum of the offices' load minus
    a fifth of the batteries' power in the evening peak), deviations priced
    50 EUR/MWh around the day-ahead price, on top of the day-ahead price itself
    (production at the price minus 5 EUR/MWh).
    """
    rng = np.random.default_rng(seed)
    dt = QUARTER.total_seconds() / 3600
    hours = np.arange(n) * dt
    end = START + n * QUARTER
    prices = day_ahead_prices(n, dt, seed) * 1000  # EUR/MWh
    sites = []
    baseline = np.zeros(n)
    for i in range(n_sites):
        size = float(rng.uniform(50, 300))
        c_rate = float(rng.uniform(0.25, 0.5))
        soc0 = float(rng.uniform(0.2, 0.8)) * size
        battery = {
            "sensor": f"site-{i:04d}-battery",
            "soc-at-start": f"{soc0:.2f} kWh",
            "soc-min": f"{0.05 * size:.2f} kWh",
            "soc-max": f"{size:.2f} kWh",
            "soc-minima": [{"datetime": end.isoformat(), "value": f"{soc0:.2f} kWh"}],
            "power-capacity": f"{size * c_rate:.2f} kW",
            "roundtrip-efficiency": f"{rng.uniform(85, 95):.1f}%",
            "storage-efficiency": "99.99%",
        }
        charger = float(rng.choice([7.4, 11.0, 22.0]))
        ev_size = float(rng.uniform(40, 80))
        # Times of day in a day's window; a shorter or longer window scales them.
        leave = START + QUARTER * int(rng.integers(n * 6 // 24, n * 9 // 24))
        back = START + QUARTER * int(rng.integers(n * 17 // 24, n * 20 // 24))
        plugged = [
            {"start": START.isoformat(), "end": leave.isoformat(), "value": f"{charger} kW"},
            {"start": leave.isoformat(), "end": back.isoformat(), "value": "0 kW"},
            {"start": back.isoformat(), "end": end.isoformat(), "value": f"{charger} kW"},
        ]
        ev = {
            "sensor": f"site-{i:04d}-ev",
            "soc-at-start": f"{rng.uniform(0.4, 0.6) * ev_size:.2f} kWh",
            "soc-min": "0 kWh",
            "soc-max": f"{ev_size:.2f} kWh",
            "soc-targets": [{"datetime": leave.isoformat(), "value": f"{0.8 * ev_size:.2f} kWh"}],
            # Driving while away: 20 % of the battery over the day.
            "soc-usage": [
                {
                    "start": leave.isoformat(),
                    "end": back.isoformat(),
                    "value": f"{0.2 * ev_size / ((back - leave).total_seconds() / 3600):.3f} kW",
                }
            ],
            "power-capacity": f"{charger} kW",
            "consumption-capacity": plugged,
            "production-capacity": plugged if i % 3 == 0 else "0 kW",
            "roundtrip-efficiency": "90%",
        }
        office = float(rng.uniform(5, 40)) * (1 + np.sin(2 * np.pi * (hours - 6) / 24).clip(0))
        baseline += office - np.where((hours >= 17) & (hours < 21), 0.2 * size * c_rate, 0.0)
        connection = 1.5 * (size * c_rate + charger + office.max())
        sites.append(
            {
                "name": f"site-{i:04d}",
                "flex-model": [battery, ev],
                "flex-context": {
                    "inflexible-consumption": _segments(office, "kW"),
                    "site-power-capacity": f"{connection:.1f} kW",
                },
            }
        )
    return {
        "sites": sites,
        "flex-context": {
            "consumption-price": _segments(prices, "EUR/MWh"),
            "production-price": _segments(prices - 5, "EUR/MWh"),
            "commitments": [
                {
                    "name": "day-ahead position",
                    "baseline": _segments(baseline, "kW"),
                    "up-price": _segments(prices + 50, "EUR/MWh"),
                    "down-price": _segments(prices - 50, "EUR/MWh"),
                }
            ],
        },
        "start": START.isoformat(),
        "duration": f"PT{n * 15}M",
        "resolution": "PT15M",
    }
