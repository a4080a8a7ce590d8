"""Shipped presets: Tibber tariff and costs, daily KPIs, on hand-computed days."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from reporting_frames import beliefs, day_hours, local_day

from schemas.errors import InputError
from schemas.reporters import load_parameters
from streams.reports.reporters import compute_report
from streams.reports.reporters.presets import PRESETS, load_preset

TZ = "Europe/Amsterdam"


def test_the_preset_list_holds_tibber_and_the_kpis():
    assert {"tibber", "kpi_daily_energy", "kpi_daily_cost", "kpi_self_consumption"} <= set(PRESETS)
    for name in PRESETS:
        preset = load_preset(name)
        assert preset.description
        assert preset.reporter().name == preset.reporter_name


def _tibber_inputs(day):
    start, end = local_day(*day)
    hours = day_hours(*day)
    price = np.array([40.0 + 7.5 * h for h in range(hours)])  # EUR/MWh
    kwh = np.array([0.3 + 0.2 * (h % 4) for h in range(hours)])  # kWh per hour
    return start, end, price, kwh


@pytest.mark.parametrize("day", [(2026, 6, 1), (2026, 3, 29)])
def test_tibber_hourly_tariff_and_daily_costs(day):
    start, end, price, kwh = _tibber_inputs(day)
    tax, fee, vat, flat = 0.1016, 0.018, 0.21, 0.28
    preset = load_preset("tibber", energy_tax=tax, supplier_fee=fee, vat=vat, flat_tariff=flat)
    reporter = preset.reporter()
    inputs = {
        "day_ahead_price": beliefs(start, price, source="entsoe"),
        "consumption": beliefs(start, kwh),
    }
    units = {"day_ahead_price": "EUR/MWh", "consumption": "kWh"}
    hourly = reporter.compute(
        inputs, start, end, preset.resolution, TZ, input_units=units,
        output_units={"tariff": "EUR/kWh", "dynamic_cost": "EUR", "flat_cost": "EUR",
                      "saving": "EUR"},
    )  # fmt: skip
    expected_tariff = [(p / 1000 + tax + fee) * (1 + vat) for p in price]
    assert hourly["tariff"].tolist() == pytest.approx(expected_tariff)
    assert len(hourly["tariff"]) == day_hours(*day)
    expected_dynamic = [k * t for k, t in zip(kwh, expected_tariff, strict=True)]
    assert hourly["dynamic_cost"].tolist() == pytest.approx(expected_dynamic)

    daily = reporter.compute(
        inputs, start, end, "P1D", TZ, input_units=units,
        output_units={"dynamic_cost": "EUR", "flat_cost": "EUR", "saving": "ct"},
    )  # fmt: skip
    assert daily["dynamic_cost"].tolist() == pytest.approx([sum(expected_dynamic)])
    assert daily["flat_cost"].tolist() == pytest.approx([kwh.sum() * flat])
    assert daily["saving"].tolist() == pytest.approx(
        [(kwh.sum() * flat - sum(expected_dynamic)) * 100]
    )
    # the day's mean tariff, each hour weighing the same
    assert daily["tariff"].tolist() == pytest.approx([np.mean(expected_tariff)])


def test_tibber_with_quarter_hour_power_consumption():
    start, end, price, _ = _tibber_inputs((2026, 6, 1))
    power_kw = np.tile([1.0, 2.0, 3.0, 2.0], 24)  # kW per quarter hour: 2 kWh per hour
    preset = load_preset("tibber")
    out = preset.reporter().compute(
        {
            "day_ahead_price": beliefs(start, price),
            "consumption": beliefs(start, power_kw, freq="15min"),
        },
        start,
        end,
        "PT1H",
        TZ,
        input_units={"day_ahead_price": "EUR/MWh", "consumption": "kW"},
    )
    c = preset.constants
    tariff = [(p / 1000 + c["energy_tax"] + c["supplier_fee"]) * (1 + c["vat"]) for p in price]
    assert out["dynamic_cost"].tolist() == pytest.approx([2.0 * t for t in tariff])
    assert out["flat_cost"].tolist() == pytest.approx([2.0 * c["flat_tariff"]] * 24)


def test_unknown_preset_or_constant_is_named():
    with pytest.raises(InputError) as err:
        load_preset("tibbr")
    assert err.value.field == "preset"
    with pytest.raises(InputError) as err:
        load_preset("tibber", btw=0.21)
    assert err.value.field == "btw"


@pytest.mark.parametrize("day", [(2026, 3, 29), (2026, 10, 25)])
def test_daily_energy_consumed_and_produced(day):
    start, end = local_day(*day)
    hours = day_hours(*day)
    # quarter-hour power: import 4 kW, then export 2 kW, alternating per hour
    power = np.concatenate([[4.0] * 4 if h % 2 == 0 else [-2.0] * 4 for h in range(hours)])
    preset = load_preset("kpi_daily_energy")
    out = preset.reporter().compute(
        {"site": beliefs(start, power, freq="15min")},
        start,
        end,
        preset.resolution,
        TZ,
        input_units={"site": "kW"},
    )
    import_hours = (hours + 1) // 2
    assert out["energy_consumed"].tolist() == pytest.approx([4.0 * import_hours])
    assert out["energy_produced"].tolist() == pytest.approx([2.0 * (hours - import_hours)])


def test_daily_cost_kpi_with_fixed_feed_in_through_parameters():
    start, end = local_day(2026, 10, 25)
    hours = day_hours(2026, 10, 25)
    site = np.array([1.0 if h < 20 else -3.0 for h in range(hours)])  # kWh per hour
    price = np.full(hours, 200.0)  # EUR/MWh
    preset = load_preset("kpi_daily_cost", production_price="0.05 EUR/kWh")
    params = load_parameters(
        """
input: [{name: site, sensor: grid-meter}, {name: price, sensor: epex-nl}]
output: [{name: cost, sensor: daily-cost}]
window: P1D
timezone: Europe/Amsterdam
"""
    )
    out = compute_report(
        preset.reporter(),
        params,
        {"site": beliefs(start, site), "price": beliefs(start, price, source="entsoe")},
        {"grid-meter": "kWh", "epex-nl": "EUR/MWh", "daily-cost": "EUR"},
        start,
        end,
    )
    expected = 20 * 1.0 * 0.200 - (hours - 20) * 3.0 * 0.05
    assert out["cost"].tolist() == pytest.approx([expected])


def test_self_consumption_share():
    start, end = local_day(2026, 6, 1)
    pv = np.zeros(24)
    pv[10:14] = -3.0  # 3 kWh produced per hour, 10:00-14:00 local
    load = np.full(24, 1.0)
    load[12] = 5.0  # one hour consuming more than the PV makes
    preset = load_preset("kpi_self_consumption")
    out = preset.reporter().compute(
        {"production": beliefs(start, pv), "consumption": beliefs(start, load)},
        start,
        end,
        "P1D",
        TZ,
        input_units={"production": "kWh", "consumption": "kWh"},
        output_units={"self_consumption_share": "%"},
    )
    self_consumed = 1.0 + 1.0 + 3.0 + 1.0
    assert out["produced"].tolist() == pytest.approx([12.0])
    assert out["self_consumed"].tolist() == pytest.approx([self_consumed])
    assert out["self_consumption_share"].tolist() == pytest.approx([self_consumed / 12.0 * 100])


def test_self_consumption_share_skips_days_without_production_and_incomplete_days():
    start, _ = local_day(2026, 6, 1)
    end = start + timedelta(days=3)
    pv = np.zeros(72)
    pv[34] = -2.0  # only day 2 produces
    load = np.full(72, 0.5)
    load[60] = np.nan  # day 3 incomplete
    out = (
        load_preset("kpi_self_consumption")
        .reporter()
        .compute(
            {"production": beliefs(start, pv), "consumption": beliefs(start, load)},
            start,
            end,
            "P1D",
            TZ,
            input_units={"production": "kWh", "consumption": "kWh"},
        )
    )
    day2 = pd.Timestamp(start).tz_convert("UTC") + pd.Timedelta(days=1)
    assert out["self_consumption_share"].index.tolist() == [day2]
    assert out["self_consumption_share"].tolist() == pytest.approx([0.5 / 2.0])
    assert out["produced"].index.tolist() == [pd.Timestamp(start).tz_convert("UTC"), day2]
