"""ProfitOrLossReporter on hand-computed cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from reporting_frames import beliefs, day_hours, local_day

from schemas.errors import InputError
from streams.reports.reporters import ProfitOrLossReporter

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def test_quarter_hour_power_priced_in_eur_per_mwh():
    power = beliefs(T0, [4.0, 4.0, 4.0, 4.0, 8.0, 8.0, 8.0, 8.0], freq="15min")  # kW
    price = beliefs(T0, [100.0, 50.0], source="market")  # EUR/MWh
    out = ProfitOrLossReporter({"consumption_price": "price"}).compute(
        {"site": power, "price": price},
        T0,
        T0 + timedelta(hours=2),
        "PT1H",
        input_units={"site": "kW", "price": "EUR/MWh"},
        output_units={"cost": "EUR"},
    )
    # hour 1: 4 kWh at 0.100 EUR/kWh; hour 2: 8 kWh at 0.050 EUR/kWh
    assert out["cost"].tolist() == pytest.approx([4 * 0.100, 8 * 0.050])


def test_energy_in_kwh_with_price_in_eur_per_mwh_and_fixed_feed_in_price():
    energy = beliefs(T0, [2.0, -3.0])  # kWh per hour: consume 2, produce 3
    price = beliefs(T0, [50.0, 80.0])  # EUR/MWh
    config = {"consumption_price": "price", "production_price": "0.04 EUR/kWh"}
    units = {"site": "kWh", "price": "EUR/MWh"}
    args = ({"site": energy, "price": price}, T0, T0 + timedelta(hours=2), "PT1H")
    loss = ProfitOrLossReporter(config).compute(*args, input_units=units, output_units={"c": "EUR"})
    assert loss["c"].tolist() == pytest.approx([2 * 0.050, -3 * 0.04])
    profit = ProfitOrLossReporter({**config, "loss_is_positive": False}).compute(
        *args, input_units=units, output_units={"c": "EUR"}
    )
    assert profit["c"].tolist() == pytest.approx([-2 * 0.050, 3 * 0.04])
    cents = ProfitOrLossReporter(config).compute(*args, input_units=units, output_units={"c": "ct"})
    assert cents["c"].tolist() == pytest.approx([2 * 5.0, -3 * 4.0])


def test_price_changing_within_the_power_resolution():
    power = beliefs(T0, [4.0])  # kW for one hour
    price = beliefs(T0, [100.0, 200.0, 300.0, 400.0], freq="15min")  # EUR/MWh
    out = ProfitOrLossReporter({"consumption_price": "price"}).compute(
        {"site": power, "price": price},
        T0,
        T0 + timedelta(hours=1),
        "PT1H",
        input_units={"site": "kW", "price": "EUR/MWh"},
    )
    # 1 kWh per quarter hour at each quarter's price
    assert out["output"].tolist() == pytest.approx([(100 + 200 + 300 + 400) / 1000])


@pytest.mark.parametrize("day", [(2026, 3, 29), (2026, 10, 25)])
def test_daily_cost_on_dst_days(day):
    start, end = local_day(*day)
    hours = day_hours(*day)
    power = beliefs(start, np.full(hours, 1.0))  # 1 kW all day
    out = ProfitOrLossReporter({"consumption_price": "0.25 EUR/kWh"}).compute(
        {"site": power},
        start,
        end,
        "P1D",
        "Europe/Amsterdam",
        input_units={"site": "kW"},
        output_units={"cost": "EUR"},
    )
    assert out["cost"].tolist() == pytest.approx([hours * 1.0 * 0.25])


def test_missing_price_slot_drops_the_slot():
    power = beliefs(T0, [1.0, 1.0])
    price = beliefs(T0, [100.0])
    out = ProfitOrLossReporter({"consumption_price": "price"}).compute(
        {"site": power, "price": price},
        T0,
        T0 + timedelta(hours=2),
        "PT1H",
        input_units={"site": "kW", "price": "EUR/MWh"},
    )
    assert out["output"].tolist() == pytest.approx([0.1])
    assert len(out["output"]) == 1


def test_price_alias_without_input_names_the_config_field():
    with pytest.raises(InputError, match="price") as err:
        ProfitOrLossReporter({"consumption_price": "price"}).compute(
            {"site": beliefs(T0, [1.0])},
            T0,
            T0 + timedelta(hours=1),
            "PT1H",
            input_units={"site": "kW"},
        )
    assert err.value.field == "consumption_price"


def test_flow_unit_is_required():
    with pytest.raises(InputError) as err:
        ProfitOrLossReporter({"consumption_price": "0.2 EUR/kWh"}).compute(
            {"site": beliefs(T0, [1.0])}, T0, T0 + timedelta(hours=1), "PT1H"
        )
    assert err.value.field == "input_units.site"
