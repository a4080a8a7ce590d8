"""Peak pricing, commitments, groups and operation modes: small hand-derived cases and seeded ones.

Shared by the tests and the benchmark that sets our scheduler beside
FlexMeasures' own (``tests/benchmarks/bench_flexmeasures_cases.py``). The
hand-derived cases are the requests of the unit tests for these features
(``tests/unit/test_peak_pricing.py``, ``test_commitments.py``,
``test_solver_groups.py``, ``test_solver_modes.py``), written as users write
them and parsed by ``schemas.flex_request.parse_site_problem``; each carries the
status and total cost derived by hand there. The seeded cases are two days at
15 minutes of a battery with PV and load (peak pricing, a soft contracted
capacity, a commitment) and one day of a battery and an on/off heat pump behind
a hybrid inverter with a soft feeder above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from schemas.flex_problem import (
    BreachPrices,
    Commitment,
    DeviceGroup,
    SiteProblem,
    StorageDevice,
    TimeGrid,
)
from schemas.flex_request import parse_site_problem
from solvers.examples import day_ahead_prices


@dataclass(frozen=True)
class FeatureCase:
    """A named problem builder with the outcome derived by hand (``None``: not derived)."""

    name: str
    build: Callable[[], SiteProblem]
    status: str | None = None
    total: float | None = None


PEAK_START = "2026-06-01T00:00+00:00"
GROUP_START = "2024-05-01T00:00+00:00"
PEAK_BATTERY = {
    "sensor": "battery",
    "soc-at-start": "5 kWh",
    "soc-min": "0 kWh",
    "soc-max": "10 kWh",
    "power-capacity": "5 kW",
    "roundtrip-efficiency": "100%",
}


def _hourly(start: str, values: list[float], unit: str) -> list[dict[str, str]]:
    """One segment per hour from ``start``."""
    t0 = datetime.fromisoformat(start)
    return [
        {"start": (t0 + k * timedelta(hours=1)).isoformat(), "duration": "PT1H",
         "value": f"{v} {unit}"}
        for k, v in enumerate(values)
    ]  # fmt: skip


def _peak_case(context: dict[str, Any], model: dict[str, Any] | None = None) -> SiteProblem:
    """Four hours of the 10 kWh / 5 kW battery (or ``model``) under ``context``."""
    return parse_site_problem(model or PEAK_BATTERY, context, PEAK_START, "PT4H", "PT1H")


def _flat(load: list[float], **fields: Any) -> dict[str, Any]:
    """A flex-context at 0.1 EUR/kWh with an hourly inflexible consumption."""
    return {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-consumption": _hourly(PEAK_START, load, "kW"),
        **fields,
    }


def peak_shaved() -> SiteProblem:
    """50 EUR/kW of new peak: the battery takes the 10 kW step down to 5 kW (250 + 1.1 EUR)."""
    return _peak_case(_flat([2, 2, 10, 2], **{"site-peak-consumption-price": "50000 EUR/MW"}))


def peak_below_baseline() -> SiteProblem:
    """The peak already reached (8 kW) is free: 16 - 5 kWh at 0.1 EUR (1.1 EUR)."""
    return _peak_case(
        _flat(
            [2, 2, 10, 2],
            **{"site-peak-consumption": "8 kW", "site-peak-consumption-price": "50 EUR/kW"},
        )
    )


def peak_partly_shaved() -> SiteProblem:
    """2 kWh to shave with: charge to the new peak of 5 kW first; 2 kW x 10 EUR + 1.4 EUR."""
    context = _flat(
        [2, 2, 10, 2],
        **{"site-peak-consumption": "3 kW", "site-peak-consumption-price": "10 EUR/kW"},
    )
    return _peak_case(context, {**PEAK_BATTERY, "soc-at-start": "2 kWh"})


def peak_production() -> SiteProblem:
    """8 kW of PV, 5 kW into the empty battery: 3 kW x 20 EUR, then 8 kWh sold (59.2 EUR)."""
    context = {
        "consumption-price": "0.1 EUR/kWh",
        "inflexible-production": _hourly(PEAK_START, [0, 8, 0, 0], "kW"),
        "site-peak-production-price": "20 EUR/kW",
    }
    return _peak_case(context, {**PEAK_BATTERY, "soc-at-start": "0 kWh"})


def commitment_congestion() -> SiteProblem:
    """0.25 EUR per kW above 6 kW in hour 2 only: the battery keeps it at 6 kW (1.5 EUR)."""
    context = _flat(
        [2, 2, 9, 2],
        commitments=[
            {
                "name": "congestion pricing",
                "baseline": [
                    {"start": "2026-06-01T02:00+00:00", "end": "2026-06-01T03:00+00:00",
                     "value": "6 kW"}
                ],
                "up-price": "250 EUR/MW",
                "down-price": "0 EUR/MW",
            }
        ],
    )  # fmt: skip
    target = [{"datetime": "2026-06-01T04:00+00:00", "value": "5 kWh"}]
    return _peak_case(context, {**PEAK_BATTERY, "soc-targets": target})


def commitment_position() -> SiteProblem:
    """A 3 kW position, 1 EUR/kWh either way: the battery flattens the load to it (1.2 EUR)."""
    return _peak_case(
        _flat(
            [1, 3, 6, 3],
            commitments=[
                {"name": "day-ahead", "baseline": "3 kW", "up-price": "1 EUR/kWh",
                 "down-price": "-1 EUR/kWh"}
            ],
        )
    )  # fmt: skip


def commitment_reward_above_penalty() -> SiteProblem:
    """Below the position pays 3 per kW and step, above costs 1: charge 5, discharge 2 x 5 (-25)."""
    context = {
        "consumption-price": "0 EUR/kWh",
        "inflexible-consumption": _hourly(PEAK_START, [2, 2, 2, 2], "kW"),
        "commitments": [
            {"name": "odd", "baseline": "2 kW", "up-price": "1 EUR/kW", "down-price": "3 EUR/kW"}
        ],
    }
    return _peak_case(context)


GROUP_BATTERY = {
    "sensor": "bat",
    "soc-at-start": "10 kWh",
    "soc-max": "10 kWh",
    "power-capacity": "5 kW",
    "group": {"sensor": "inverter"},
}
PV = {
    "sensor": "pv",
    "inflexible-production": [
        {"start": GROUP_START, "duration": "PT1H", "value": "4 kW"},
        {"start": "2024-05-01T01:00+00:00", "duration": "PT1H", "value": "0 kW"},
    ],
    "group": {"sensor": "inverter"},
}
INVERTER = {"sensor": "inverter", "power-capacity": "6 kW"}


def _group_case(fm: Any, fc: dict[str, Any], hours: int) -> SiteProblem:
    return parse_site_problem(fm, fc, GROUP_START, f"PT{hours}H", "PT1H")


def group_hybrid_inverter() -> SiteProblem:
    """PV 4 kW leaves the full battery 2 kW of a 6 kW inverter, then 5 kW: -(6 x 0.2 + 5 x 0.1)."""
    fc = {"consumption-price": _hourly(GROUP_START, [0.2, 0.1], "EUR/kWh")}
    return _group_case([GROUP_BATTERY, PV, INVERTER], fc, 2)


def group_nested() -> SiteProblem:
    """The inverter joins a 5.5 kW feeder: 1.5 then 5 kW from the battery (-1.6 EUR)."""
    fc = {"consumption-price": _hourly(GROUP_START, [0.2, 0.1], "EUR/kWh")}
    feeder = {"asset": 7, "power-capacity": "5.5 kW"}
    return _group_case([GROUP_BATTERY, PV, {**INVERTER, "group": {"asset": 7}}, feeder], fc, 2)


def group_soft_capacity() -> SiteProblem:
    """8 kWh in two hours under a soft 3 kW feeder: 1 + 1 kW of breach at 10000 EUR/kW, and peak."""
    fm = [
        {
            "sensor": "bat",
            "soc-at-start": "0 kWh",
            "soc-max": "10 kWh",
            "power-capacity": "5 kW",
            "soc-targets": [{"datetime": "2024-05-01T02:00+00:00", "value": "8 kWh"}],
            "group": {"sensor": "feeder"},
        },
        {"sensor": "feeder", "consumption-capacity": "3 kW"},
    ]
    return _group_case(fm, {"consumption-price": "0.1 EUR/kWh", "relax-constraints": False}, 2)


def group_impossible() -> SiteProblem:
    """4 kW of PV behind a 3 kW inverter, the battery full: infeasible."""
    fm = [GROUP_BATTERY, PV, {"sensor": "inverter", "power-capacity": "3 kW"}]
    return _group_case(fm, {"consumption-price": "0.1 EUR/kWh"}, 1)


def group_process() -> SiteProblem:
    """A 4 kW one-hour pump and a 2 kW load on a 5 kW board: the pump runs in hour 1 (1.0 EUR)."""
    pump = {"sensor": "pump", "power": "4 kW", "duration": "PT1H", "process-type": "SHIFTABLE"}
    load = {
        "sensor": "load",
        "inflexible-consumption": [{"start": GROUP_START, "duration": "PT1H", "value": "2 kW"}],
    }
    board = {"group": {"sensor": "board"}}
    fc = {"consumption-price": _hourly(GROUP_START, [0.1, 0.2, 0.3], "EUR/kWh")}
    fm = [{**pump, **board}, {**load, **board}, {"sensor": "board", "power-capacity": "5 kW"}]
    return _group_case(fm, fc, 3)


OFF_OR_2_TO_3 = [
    {"consumption-range": ["0 kW", "0 kW"]},
    {"consumption-range": ["2 kW", "3 kW"]},
]


def heater(**fields: Any) -> dict[str, Any]:
    """A heat buffer behind an on/off heater (off, or 2 to 3 kW)."""
    return {
        "sensor": "heater",
        "soc-at-start": "0 kWh",
        "soc-max": "10 kWh",
        "power-capacity": "3 kW",
        "production-capacity": "0 kW",
        "operation-modes": OFF_OR_2_TO_3,
        **fields,
    }


def modes_on_off() -> SiteProblem:
    """4.5 kWh in four hours at 0.1, 0.3, 0.2, 0.4: 2.5 and 2 kW, never 1.5 (0.65 EUR)."""
    target = {"soc-targets": [{"datetime": "2024-05-01T04:00+00:00", "value": "4.5 kWh"}]}
    fc = {"consumption-price": _hourly(GROUP_START, [0.1, 0.3, 0.2, 0.4], "EUR/kWh")}
    return _group_case([heater(**target)], fc, 4)


def modes_demand() -> SiteProblem:
    """A 1 kW heat demand the heater cannot run at: [2, 0, 2, 0] kW (0.6 EUR)."""
    fm = heater(**{"soc-at-start": "1 kWh", "soc-max": "2 kWh", "soc-usage": "1 kW"})
    fc = {"consumption-price": _hourly(GROUP_START, [0.1, 0.4, 0.2, 0.3], "EUR/kWh")}
    return _group_case([fm], fc, 4)


def modes_impossible() -> SiteProblem:
    """Always 2-3 kW into a 1 kWh buffer for an hour: infeasible."""
    fm = heater(**{"soc-max": "1 kWh", "operation-modes": OFF_OR_2_TO_3[1:]})
    return _group_case([fm], {"consumption-price": "0.1 EUR/kWh"}, 1)


HAND_DERIVED = [
    FeatureCase("peak: shaved", peak_shaved, "optimal", 251.1),
    FeatureCase("peak: below the baseline", peak_below_baseline, "optimal", 1.1),
    FeatureCase("peak: partly shaved", peak_partly_shaved, "optimal", 21.4),
    FeatureCase("peak: production", peak_production, "optimal", 59.2),
    FeatureCase("commitment: congestion", commitment_congestion, "optimal", 1.5),
    FeatureCase("commitment: position", commitment_position, "optimal", 1.2),
    FeatureCase("commitment: down > up", commitment_reward_above_penalty, "optimal", -25.0),
    FeatureCase("group: hybrid inverter", group_hybrid_inverter, "optimal", -1.7),
    FeatureCase("group: nested", group_nested, "optimal", -1.6),
    FeatureCase("group: soft capacity", group_soft_capacity, "relaxed", 30000.8),
    FeatureCase("group: impossible limit", group_impossible, "infeasible"),
    FeatureCase("group: process", group_process, "optimal", 1.0),
    FeatureCase("modes: on/off heater", modes_on_off, "optimal", 0.65),
    FeatureCase("modes: 1 kW demand", modes_demand, "optimal", 0.6),
    FeatureCase("modes: impossible", modes_impossible, "infeasible"),
]


def _profiles(n: int, dt: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A load (kW, an evening bump and noise) and PV (kW, a midday bell scaled by weather)."""
    hours = np.arange(n) * dt % 24
    load = 4.0 + 3.0 * np.exp(-(((hours - 19) / 2.5) ** 2)) + rng.uniform(0, 1.5, n)
    sun = np.clip(np.cos((hours - 13) / 12 * np.pi * 1.6), 0, None) ** 2
    pv = 12.0 * sun * np.repeat(rng.uniform(0.4, 1.0, n // int(24 / dt) + 1), int(24 / dt))[:n]
    return np.round(load, 3), np.round(pv, 3)


def seeded_peak_site(seed: int, n: int = 192) -> SiteProblem:
    """A 40 kWh / 10 kW battery with PV and a 9-19 kW load over two days at 15 minutes.

    Peak pricing (200-300 EUR/MW above 6-8 kW reached), a contracted 6.5 kW
    consumption capacity below a 30 kW connection (breaches at 0.2-0.5 EUR/kW), an
    export peak price, and a day-ahead position (imbalance 0.12 EUR/kWh short,
    0.03 EUR/kWh long) for the second day's evening.
    """
    rng = np.random.default_rng(seed)
    grid = TimeGrid(datetime(2026, 6, 1, tzinfo=UTC), timedelta(minutes=15), n)
    dt = grid.dt_hours
    load, pv = _profiles(n, dt, rng)
    load = 2 * load
    battery = StorageDevice(
        "battery", n, soc_at_start=float(rng.uniform(10, 30)), soc_min=4.0, soc_max=40.0,
        power_capacity=10.0, charging_efficiency=0.95, discharging_efficiency=0.95,
        storage_efficiency=0.9999,
    )  # fmt: skip
    prices = day_ahead_prices(n, dt, seed)
    baseline = np.full(n, np.nan)
    evening = slice(int(42 / dt), int(46 / dt))
    baseline[evening] = np.round(load[evening] - pv[evening])
    position = Commitment("day-ahead", baseline, np.full(n, 0.12 * dt), np.full(n, 0.03 * dt))
    breach = float(rng.uniform(0.2, 0.5))
    return SiteProblem(
        grid,
        [battery],
        prices,
        production_price=prices - 0.02,
        site_power_capacity=30.0,
        site_consumption_capacity=6.5,
        inflexible_power=load - pv,
        breach_prices=BreachPrices(site_consumption=np.full(n, breach)),
        peak_consumption=float(rng.uniform(6, 8)),
        peak_consumption_price=np.full(n, float(rng.uniform(0.2, 0.3))),
        peak_production_price=np.full(n, 0.05),
        peak_production=5.0,
        commitments=[position],
    )


def seeded_group_modes_site(seed: int, n: int = 96) -> SiteProblem:
    """A battery and PV behind a 7 kW hybrid inverter, an on/off heat pump, a soft feeder; one day.

    The heat pump (off or 1.5-3 kW electric, COP 3) keeps a 20 kWh heat buffer
    above 4 kWh against a heat demand; the inverter (hard) and a feeder
    (production capacity 6 kW, soft at 10000 EUR/kW per FlexMeasures' default)
    hold both; peak pricing on the site's import.
    """
    rng = np.random.default_rng(seed)
    grid = TimeGrid(datetime(2026, 6, 1, tzinfo=UTC), timedelta(minutes=15), n)
    dt = grid.dt_hours
    load, pv = _profiles(n, dt, rng)
    pv = np.round(0.7 * pv, 3)
    hours = np.arange(n) * dt % 24
    battery = StorageDevice(
        "battery", n, soc_at_start=float(rng.uniform(5, 15)), soc_min=2.0, soc_max=20.0,
        power_capacity=5.0, charging_efficiency=0.95, discharging_efficiency=0.95,
    )  # fmt: skip
    demand = np.round(2.0 + 2.5 * (np.cos((hours - 4) / 24 * 2 * np.pi) + 1) / 2, 3)
    heat_pump = StorageDevice(
        "heat-pump", n, soc_at_start=10.0, soc_min=4.0, soc_max=20.0, power_capacity=3.0,
        production_capacity=0.0, charging_efficiency=3.0, soc_usage=demand,
        operation_modes=((0.0, 0.0), (1.5, 3.0)),
    )  # fmt: skip
    inverter = DeviceGroup("inverter", n, ["battery"], power_capacity=7.0, inflexible_power=-pv)
    feeder = DeviceGroup(
        "feeder", n, ["battery", "heat-pump"], power_capacity=9.0, production_capacity=6.0,
        production_breach_price=np.full(n, 10000.0), inflexible_power=-pv,
    )  # fmt: skip
    return SiteProblem(
        grid,
        [battery, heat_pump],
        day_ahead_prices(n, dt, seed),
        site_power_capacity=25.0,
        inflexible_power=load - pv,
        peak_consumption=6.0,
        peak_consumption_price=np.full(n, 0.25),
        groups=[inverter, feeder],
    )


def seeded_cases(seeds: tuple[int, ...] = (1, 2, 3)) -> list[FeatureCase]:
    """The seeded two-day sites, one of each kind per seed."""
    out = []
    for s in seeds:
        out.append(FeatureCase(f"seeded peak site #{s}", lambda s=s: seeded_peak_site(s)))
        out.append(FeatureCase(f"seeded group+modes #{s}", lambda s=s: seeded_group_modes_site(s)))
    return out
