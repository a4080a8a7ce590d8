"""Flex-models and flex-contexts written as FlexMeasures 1.0 users write them.

Each case is JSON as it appears in FlexMeasures' API documentation, field
descriptions or its own tests, with an assertion of what it means. Sensor ids
are resolved by a small in-memory resolver standing in for the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from schemas.errors import InputError
from schemas.flex_problem import ProcessType, SiteProblem
from schemas.flex_request import (
    DEFAULT_CAPACITY_BREACH_PRICE,
    DEFAULT_DEVICE_BREACH_PRICE,
    DEFAULT_SOC_BREACH_PRICE,
    parse_site_problem,
)
from solvers import Status, schedule

START = "2015-01-01T00:00+01:00"
T0 = pd.Timestamp(START)
HOURS = pd.date_range(T0 - pd.Timedelta(hours=2), periods=30, freq="h")


def _series(values: float | list[float], unit: str) -> pd.Series:
    s = pd.Series(np.resize(np.asarray(values, dtype=float), len(HOURS)), index=HOURS)
    s.attrs["unit"] = unit
    return s


#: Sensors by id, as a FlexMeasures server would hold them.
SENSORS = {
    3: _series(2.0, "kW"),  # a building load, consumption positive
    4: _series(1.0, "kW"),
    5: _series(100.0, "EUR/MWh"),  # day-ahead prices
    6: _series(60.0, "EUR/MWh"),
    12: _series([4.0] * 2 + [9.0] * 28, "kWh"),  # state of charge: 4 before, 9 from the start
    34: _series(0.5, "kW"),
}
RESOLVED: list[tuple[Any, str]] = []


def resolver(ref: dict[str, Any], field: str) -> pd.Series:
    RESOLVED.append((ref, field))
    return SENSORS[ref["sensor"]]


BAT = {"sensor": 15, "soc-at-start": "3.1 kWh", "soc-max": "20 kWh", "power-capacity": "5 kW"}
CTX = {"consumption-price": "0.29 EUR/kWh"}


def parse(fm: Any = BAT, ctx: Any = CTX, duration: str = "PT6H") -> SiteProblem:
    return parse_site_problem(fm, ctx, START, duration, "PT1H", resolver=resolver)


def bat(**fields: Any) -> dict[str, Any]:
    return {**BAT, **fields}


def ctx(**fields: Any) -> dict[str, Any]:
    return {**CTX, **fields}


def without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def dev(p: SiteProblem, i: int = 0) -> Any:
    return p.devices[i]


def close(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a, dtype=float), b, equal_nan=True))


Check = Callable[[SiteProblem], bool]

CASES: list[tuple[str, Any, Any, Check]] = [
    # --- sensors named by id -------------------------------------------------
    ("integer sensor id", BAT, CTX, lambda p: dev(p).name == "15"),
    ("sensor by name", bat(sensor="battery"), CTX, lambda p: dev(p).name == "battery"),
    ("asset id alongside the sensor", bat(asset=2), CTX, lambda p: dev(p).name == "15"),
    ("commodity electricity", bat(commodity="electricity"), CTX, lambda p: len(p.devices) == 1),
    # --- bare numbers and soc-unit -----------------------------------------
    (
        "bare soc-at-start without soc-unit is MWh",
        bat(**{"soc-at-start": 0.0031}),
        CTX,
        lambda p: close(dev(p).soc_at_start, 3.1),
    ),
    (
        "bare soc-max without soc-unit is MWh",
        bat(**{"soc-max": 0.02}),
        CTX,
        lambda p: close(dev(p).soc_max, 20.0),
    ),
    (
        "bare numbers with soc-unit kWh",
        bat(**{"soc-unit": "kWh", "soc-at-start": 3.1, "soc-min": 1, "soc-max": 20}),
        CTX,
        lambda p: (
            dev(p).soc_at_start == 3.1 and close(dev(p).soc_min, 1) and close(dev(p).soc_max, 20)
        ),
    ),
    (
        "bare numbers with soc-unit MWh",
        bat(**{"soc-unit": "MWh", "soc-at-start": 0.002, "soc-max": 0.02}),
        CTX,
        lambda p: close(dev(p).soc_at_start, 2.0) and close(dev(p).soc_max, 20.0),
    ),
    (
        "bare soc-targets values with soc-unit",
        bat(
            **{
                "soc-unit": "kWh",
                "soc-targets": [{"datetime": "2015-01-01T03:00+01:00", "value": 8}],
            }
        ),
        CTX,
        lambda p: dev(p).soc_targets[3] == 8,
    ),
    (
        "efficiency as a ratio string",
        bat(**{"charging-efficiency": ".9"}),
        CTX,
        lambda p: close(dev(p).charging_efficiency, 0.9),
    ),
    (
        "efficiency as a bare ratio",
        bat(**{"discharging-efficiency": 0.95}),
        CTX,
        lambda p: close(dev(p).discharging_efficiency, 0.95),
    ),
    (
        "roundtrip-efficiency 90%",
        bat(**{"roundtrip-efficiency": "90%"}),
        CTX,
        lambda p: close(dev(p).charging_efficiency, 0.9**0.5),
    ),
    (
        "storage-efficiency 99.9%",
        bat(**{"storage-efficiency": "99.9%"}),
        CTX,
        lambda p: close(dev(p).storage_efficiency, 0.999),
    ),
    # --- capacities and their fall-backs -------------------------------------
    (
        "power-capacity in kVA",
        bat(**{"power-capacity": "50 kVA"}),
        CTX,
        lambda p: close(dev(p).consumption_capacity, 50) and close(dev(p).production_capacity, 50),
    ),
    (
        "no power-capacity: the larger directional capacity",
        without(
            bat(**{"consumption-capacity": "4 kW", "production-capacity": "3 kW"}), "power-capacity"
        ),
        CTX,
        lambda p: (
            close(dev(p).power_capacity, 4)
            and close(dev(p).consumption_capacity, 4)
            and close(dev(p).production_capacity, 3)
        ),
    ),
    (
        "no power-capacity, only consumption-capacity: production is zero",
        without(bat(**{"consumption-capacity": "4 kW"}), "power-capacity"),
        CTX,
        lambda p: close(dev(p).consumption_capacity, 4) and close(dev(p).production_capacity, 0),
    ),
    (
        "no power-capacity, only production-capacity: consumption is zero",
        without(bat(**{"production-capacity": "3 kW"}), "power-capacity"),
        CTX,
        lambda p: close(dev(p).production_capacity, 3) and close(dev(p).consumption_capacity, 0),
    ),
    (
        "no power-capacity: the site-power-capacity",
        without(BAT, "power-capacity"),
        ctx(**{"site-power-capacity": "45kVA"}),
        lambda p: (
            close(dev(p).consumption_capacity, 45)
            and any("site-power-capacity" in n for n in p.notes)
        ),
    ),
    (
        "consumption-capacity from a sensor",
        bat(**{"consumption-capacity": {"sensor": 3}}),
        CTX,
        lambda p: close(dev(p).consumption_capacity, 2) and close(dev(p).production_capacity, 5),
    ),
    (
        "overlapping capacity segments: the minimum",
        bat(
            **{
                "power-capacity": [
                    {"start": "2015-01-01T00:00+01:00", "duration": "PT4H", "value": "5 kW"},
                    {"start": "2015-01-01T02:00+01:00", "duration": "PT4H", "value": "2 kW"},
                ]
            }
        ),
        CTX,
        lambda p: close(dev(p).consumption_capacity, [5, 5, 2, 2, 2, 2]),
    ),
    # --- state of charge at the start ----------------------------------------
    ("no soc-at-start: 0", without(BAT, "soc-at-start"), CTX, lambda p: dev(p).soc_at_start == 0),
    (
        "soc-at-start from a state-of-charge sensor",
        without(bat(**{"state-of-charge": {"sensor": 12}}), "soc-at-start"),
        CTX,
        lambda p: (
            close(dev(p).soc_at_start, 9) and dev(p).outputs["state-of-charge"] == {"sensor": 12}
        ),
    ),
    (
        "soc-at-start from a state-of-charge time series",
        without(
            bat(
                **{
                    "state-of-charge": [
                        {"datetime": "2014-12-31T23:30+01:00", "value": "7 kWh"},
                        {"datetime": "2014-12-31T23:55+01:00", "value": "8 kWh"},
                        {"datetime": "2015-01-01T00:30+01:00", "value": "9 kWh"},
                    ]
                }
            ),
            "soc-at-start",
        ),
        CTX,
        lambda p: dev(p).soc_at_start == 8,
    ),
    (
        "soc-at-start wins over state-of-charge",
        bat(**{"state-of-charge": {"sensor": 12}}),
        CTX,
        lambda p: dev(p).soc_at_start == 3.1,
    ),
    # --- SOC constraints ------------------------------------------------------
    (
        "soc-targets on the grid",
        bat(**{"soc-targets": [{"datetime": "2015-01-01T04:00+01:00", "value": "10 kWh"}]}),
        CTX,
        lambda p: dev(p).soc_targets[4] == 10 and np.isnan(dev(p).soc_targets[3]),
    ),
    (
        "soc-target off the grid is projected",
        bat(**{"soc-targets": [{"datetime": "2015-01-01T03:30+01:00", "value": "10 kWh"}]}),
        CTX,
        # exact at 04:00; at 03:00 within what half an hour of 5 kW can move
        lambda p: (
            dev(p).soc_targets[4] == 10
            and close(dev(p).soc_minima[3], 7.5)
            and close(dev(p).soc_maxima[3], 12.5)
        ),
    ),
    (
        "soc-minimum off the grid is projected",
        bat(**{"soc-minima": [{"datetime": "2015-01-01T03:30+01:00", "value": "10 kWh"}]}),
        CTX,
        lambda p: close(dev(p).soc_minima[3], 7.5) and close(dev(p).soc_minima[4], 7.5),
    ),
    (
        "soc-maximum off the grid is projected and clamped to soc-max",
        bat(**{"soc-maxima": [{"datetime": "2015-01-01T03:15+01:00", "value": "18 kWh"}]}),
        CTX,
        lambda p: close(dev(p).soc_maxima[3], 19.25) and close(dev(p).soc_maxima[4], 20),
    ),
    (
        "soc-minima as a period (start and end)",
        bat(
            **{
                "soc-minima": [
                    {
                        "value": "8 kWh",
                        "start": "2015-01-01T02:00+01:00",
                        "end": "2015-01-01T03:30+01:00",
                    }
                ]
            }
        ),
        CTX,
        lambda p: close(dev(p).soc_minima[[2, 3]], 8) and np.isnan(dev(p).soc_minima[4]),
    ),
    (
        "soc-maxima as a period with a duration",
        bat(
            **{
                "soc-maxima": [
                    {"value": "15 kWh", "start": "2015-01-01T01:00+01:00", "duration": "PT1H"}
                ]
            }
        ),
        CTX,
        lambda p: close(dev(p).soc_maxima[[1, 2]], 15),
    ),
    (
        "soc-gain as a list of a quantity and a sensor",
        bat(**{"soc-gain": ["100 Wh/h", {"sensor": 34}]}),
        CTX,
        lambda p: close(dev(p).soc_gain, 0.6),
    ),
    (
        "soc-usage in Wh/h",
        bat(**{"soc-usage": ["100 Wh/h"]}),
        CTX,
        lambda p: close(dev(p).soc_usage, 0.1),
    ),
    # --- tie-break flags --------------------------------------------------------
    (
        "prefer-curtailing-later false",
        bat(**{"prefer-curtailing-later": False}),
        CTX,
        lambda p: dev(p).prefer_curtailing_later is False,
    ),
    (
        "prefer-charging-sooner false",
        bat(**{"prefer-charging-sooner": False}),
        CTX,
        lambda p: dev(p).prefer_charging_sooner is False,
    ),
    (
        "output sensors consumption and production",
        bat(consumption={"sensor": 14}, production={"sensor": 15}),
        CTX,
        lambda p: dev(p).outputs == {"consumption": {"sensor": 14}, "production": {"sensor": 15}},
    ),
    # --- prices ----------------------------------------------------------------
    ("consumption-price per kWh", BAT, CTX, lambda p: close(p.consumption_price, 0.29)),
    (
        "consumption-price from a sensor id",
        BAT,
        {"consumption-price": {"sensor": 5}},
        lambda p: close(p.consumption_price, 0.1),
    ),
    (
        "production-price per kWh",
        BAT,
        ctx(**{"production-price": "0.12 EUR/kWh"}),
        lambda p: close(p.production_price, 0.12),
    ),
    (
        "deprecated consumption-price-sensor",
        BAT,
        {"consumption-price-sensor": 5},
        lambda p: (
            close(p.consumption_price, 0.1)
            and any(
                "deprecated" in n and '"consumption-price": {"sensor": 5}' in n for n in p.notes
            )
            and p.breach_prices.soc_minima is None
        ),
    ),
    (
        "deprecated production-price-sensor",
        BAT,
        {"consumption-price-sensor": 5, "production-price-sensor": 6},
        lambda p: close(p.production_price, 0.06),
    ),
    (
        "overlapping price segments: the first listed",
        BAT,
        {
            "consumption-price": [
                {"start": "2015-01-01T00:00+01:00", "duration": "PT4H", "value": "100 EUR/MWh"},
                {"start": "2015-01-01T02:00+01:00", "duration": "PT4H", "value": "50 EUR/MWh"},
            ]
        },
        lambda p: close(p.consumption_price, [0.1] * 4 + [0.05] * 2),
    ),
    # --- site ------------------------------------------------------------------
    (
        "site capacities without a space before the unit",
        BAT,
        ctx(
            **{
                "site-power-capacity": "45kVA",
                "site-consumption-capacity": "45kW",
                "site-production-capacity": "0kW",
            }
        ),
        lambda p: close(p.site_consumption_capacity, 45) and close(p.site_production_capacity, 0),
    ),
    (
        "site-consumption-capacity above site-power-capacity: the minimum",
        BAT,
        ctx(**{"site-power-capacity": "10 kW", "site-consumption-capacity": "20 kW"}),
        lambda p: close(p.site_consumption_capacity, 10),
    ),
    (
        "inflexible-device-sensors as bare ids",
        BAT,
        ctx(**{"inflexible-device-sensors": [3, 4]}),
        lambda p: (
            close(p.inflexible_power, 3.0)
            and any("inflexible-device-sensors" in n for n in p.notes)
        ),
    ),
    (
        "inflexible-consumption as sensor references",
        BAT,
        ctx(**{"inflexible-consumption": [{"sensor": 3}, {"sensor": 4}]}),
        lambda p: close(p.inflexible_power, 3.0),
    ),
    (
        "inflexible-production as sensor references",
        BAT,
        ctx(**{"inflexible-production": [{"sensor": 3}]}),
        lambda p: close(p.inflexible_power, -2.0),
    ),
    (
        "aggregate output sensors",
        BAT,
        ctx(**{"aggregate-consumption": {"sensor": 10}, "aggregate-production": {"sensor": 11}}),
        lambda p: (
            p.outputs
            == {"aggregate-consumption": {"sensor": 10}, "aggregate-production": {"sensor": 11}}
        ),
    ),
    # --- relaxation and breach prices ------------------------------------------
    (
        "relax-constraints defaults to true",
        BAT,
        CTX,
        lambda p: (
            p.breach_prices.soc_minima == DEFAULT_SOC_BREACH_PRICE
            and p.breach_prices.soc_maxima == DEFAULT_SOC_BREACH_PRICE
            and close(p.breach_prices.site_consumption, DEFAULT_CAPACITY_BREACH_PRICE)
            and p.breach_prices.device_consumption is None
        ),
    ),
    (
        "relax-constraints false",
        BAT,
        ctx(**{"relax-constraints": False}),
        lambda p: p.breach_prices.soc_minima is None and p.breach_prices.site_consumption is None,
    ),
    (
        "relax-soc-constraints false overrides relax-constraints",
        BAT,
        ctx(**{"relax-soc-constraints": False}),
        lambda p: (
            p.breach_prices.soc_minima is None and p.breach_prices.site_consumption is not None
        ),
    ),
    (
        "relax-site-capacity-constraints false",
        BAT,
        ctx(**{"relax-site-capacity-constraints": False}),
        lambda p: (
            p.breach_prices.site_production is None and p.breach_prices.soc_maxima is not None
        ),
    ),
    (
        "relax-site-capacity-constraints true with relax-constraints false",
        BAT,
        ctx(**{"relax-constraints": False, "relax-site-capacity-constraints": True}),
        lambda p: (
            p.breach_prices.soc_minima is None and p.breach_prices.site_production is not None
        ),
    ),
    (
        "relax-capacity-constraints prices device capacities",
        BAT,
        ctx(**{"relax-capacity-constraints": True}),
        lambda p: (
            close(p.breach_prices.device_consumption, DEFAULT_DEVICE_BREACH_PRICE)
            and close(p.breach_prices.device_production, DEFAULT_DEVICE_BREACH_PRICE)
        ),
    ),
    (
        "consumption-breach-price alone",
        BAT,
        ctx(**{"consumption-breach-price": "10 EUR/kW"}),
        lambda p: (
            close(p.breach_prices.device_consumption, 10)
            and p.breach_prices.device_production is None
        ),
    ),
    (
        "production-breach-price per MW",
        BAT,
        ctx(**{"production-breach-price": "10000 EUR/MW"}),
        lambda p: close(p.breach_prices.device_production, 10),
    ),
    (
        "site breach prices",
        BAT,
        ctx(
            **{
                "site-consumption-breach-price": "1000 EUR/kW",
                "site-production-breach-price": "1000 EUR/kW",
            }
        ),
        lambda p: (
            close(p.breach_prices.site_consumption, 1000)
            and close(p.breach_prices.site_production, 1000)
        ),
    ),
    (
        "soc breach prices",
        BAT,
        ctx(**{"soc-minima-breach-price": "120 EUR/kWh", "soc-maxima-breach-price": "120 EUR/kWh"}),
        lambda p: p.breach_prices.soc_minima == 120 and p.breach_prices.soc_maxima == 120,
    ),
    # --- processes ---------------------------------------------------------------
    (
        "process with a bare power and the default process-type",
        {"sensor": 20, "duration": "PT4H", "power": 4},
        CTX,
        lambda p: dev(p).power == 4 and dev(p).process_type is ProcessType.INFLEXIBLE,
    ),
    (
        "process longer than the window fills it",
        {"sensor": 20, "duration": "PT48H", "process-type": "SHIFTABLE", "power": 4},
        CTX,
        lambda p: dev(p).duration_steps == 6,
    ),
    (
        "process with time-restrictions",
        {
            "sensor": 20,
            "duration": "PT2H",
            "process-type": "SHIFTABLE",
            "power": 4,
            "time-restrictions": [{"start": "2015-01-01T01:00+01:00", "duration": "PT2H"}],
        },
        CTX,
        lambda p: list(dev(p).allowed) == [True, False, False, True, True, True],
    ),
    # --- operation modes and groups (FlexMeasures' field examples and tests) ----------
    (
        "operation-modes: off or exactly 883.7 W",
        bat(
            **{
                "operation-modes": [
                    {"consumption-range": ["0 W", "0 W"]},
                    {"consumption-range": ["883.7 W", "883.7 W"]},
                ]
            }
        ),
        CTX,
        lambda p: dev(p).operation_modes == ((0.0, 0.0), (0.8837, 0.8837)),
    ),
    (
        "group by asset: battery and PV under a 2.5 MW inverter",
        [
            bat(**{"power-capacity": "2 MW", "group": {"asset": 7}}),
            {
                "sensor": 16,
                "power-capacity": "2 MW",
                "consumption-capacity": "0 MW",
                "production-capacity": "2 MW",
                "group": {"asset": 7},
            },
            {"asset": 7, "power-capacity": "2.5 MW"},
        ],
        CTX,
        lambda p: (
            p.groups[0].name == "asset 7"
            and p.groups[0].members == ["15", "16"]
            and close(p.groups[0].power_capacity, 2500)
        ),
    ),
    (
        "inflexible-consumption entry from a sensor, in a group by sensor",
        [
            bat(group={"sensor": 30}),
            {"inflexible-consumption": {"sensor": 3}, "group": {"sensor": 30}},
            {"sensor": 30, "power-capacity": "2 MW"},
        ],
        CTX,
        lambda p: close(p.groups[0].inflexible_power, 2.0) and close(p.inflexible_power, 2.0),
    ),
]


@pytest.mark.parametrize(
    ("fm", "context", "check"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_flexmeasures_input_is_accepted_with_its_meaning(fm, context, check):
    problem = parse(fm, context)
    assert check(problem)


def test_there_are_at_least_forty_six_cases():
    assert len(CASES) >= 46


@pytest.mark.parametrize(("fm", "context"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_every_case_schedules(fm, context):
    result = schedule(parse(fm, context))
    assert result.status in (Status.OPTIMAL, Status.RELAXED), result.message


@pytest.mark.parametrize(
    ("fm", "context", "field", "words"),
    [
        (bat(group={"asset": 3}), CTX, "flex-model.group", "need a list of flex-models"),
        (BAT, ctx(commodity="gas"), "flex-context.commodity", "commodities list"),
        (bat(**{"soc-mx": "40 kWh"}), CTX, "flex-model.soc-mx", "did you mean 'soc-max'"),
        (
            bat(**{"prefer_charging_sooner": True}),
            CTX,
            "flex-model.prefer_charging_sooner",
            "did you mean 'prefer-charging-sooner'",
        ),
        (
            BAT,
            ctx(**{"consumption-prise": "1 EUR/MWh"}),
            "flex-context.consumption-prise",
            "did you mean 'consumption-price'",
        ),
        (BAT, {"production-price": "1 EUR/MWh"}, "flex-context.consumption-price", "required"),
        (
            BAT,
            {"consumption-price-sensor": 5, "relax-constraints": True},
            "flex-context.consumption-price-sensor",
            '"consumption-price": {"sensor": 5}',
        ),
        (bat(commodity=""), CTX, "flex-model.commodity", "at least 1 character"),
    ],
)
def test_errors_name_the_field_and_say_what_to_do(fm, context, field, words):
    with pytest.raises(InputError) as info:
        parse(fm, context)
    assert info.value.field == field
    assert words in str(info.value)


def test_sensor_ids_offline_get_the_offline_message():
    with pytest.raises(InputError) as info:
        parse_site_problem(BAT, ctx(**{"inflexible-device-sensors": [3, 4]}), START, "PT6H", "PT1H")
    assert info.value.field == "inflexible-device-sensors[0]"
    assert "offline" in str(info.value)
