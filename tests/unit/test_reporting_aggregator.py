"""AggregatorReporter on hand-computed cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from reporting_frames import beliefs, day_hours, local_day

from schemas.errors import InputError
from streams.reports.reporters import AggregatorReporter

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def test_weights_give_pv_minus_consumption():
    pv = beliefs(T0, [-2.0, -3.0])
    consumption = beliefs(T0, [1.0, 1.5])
    reporter = AggregatorReporter({"method": "sum", "weights": {"consumption": -1}})
    out = reporter.compute(
        {"pv": pv, "consumption": consumption},
        T0,
        T0 + timedelta(hours=2),
        "PT1H",
        input_units={"pv": "kW", "consumption": "kW"},
        output_units={"net": "kW"},
    )
    assert list(out) == ["net"]
    assert out["net"].tolist() == [-2.0 - 1.0, -3.0 - 1.5]
    assert out["net"].index.tolist() == [pd.Timestamp(T0), pd.Timestamp(T0 + timedelta(hours=1))]
    assert str(out["net"].index.tz) == "UTC"


@pytest.mark.parametrize(
    ("method", "expected"),
    [("mean", [2.0, 5.0]), ("max", [3.0, 9.0]), ("min", [1.0, 1.0]), ("median", [2.0, 5.0])],
)
def test_methods_combine_across_inputs(method, expected):
    inputs = {
        "a": beliefs(T0, [1.0, 1.0]),
        "b": beliefs(T0, [2.0, 5.0]),
        "c": beliefs(T0, [3.0, 9.0]),
    }
    out = AggregatorReporter({"method": method}).compute(
        inputs,
        T0,
        T0 + timedelta(hours=2),
        timedelta(hours=1),
        input_units=dict.fromkeys(inputs, "kW"),
    )
    assert out["output"].tolist() == expected


def test_std_uses_sample_statistics_like_pandas():
    inputs = {"a": beliefs(T0, [1.0]), "b": beliefs(T0, [3.0])}
    out = AggregatorReporter({"method": "std"}).compute(
        inputs, T0, T0 + timedelta(hours=1), "PT1H", input_units={"a": "kW", "b": "kW"}
    )
    assert out["output"].tolist() == pytest.approx([float(np.std([1.0, 3.0], ddof=1))])


def test_megawatt_input_into_kilowatt_output():
    out = AggregatorReporter({}).compute(
        {"plant": beliefs(T0, [0.5, 1.25])},
        T0,
        T0 + timedelta(hours=2),
        "PT1H",
        input_units={"plant": "MW"},
        output_units={"plant_kw": "kW"},
    )
    assert out["plant_kw"].tolist() == [500.0, 1250.0]


@pytest.mark.parametrize("day", [(2026, 3, 29), (2026, 10, 25), (2026, 6, 1)])
def test_daily_energy_from_quarter_hour_power_on_dst_days(day):
    start, end = local_day(*day)
    hours = day_hours(*day)
    n = hours * 4
    power = np.full(n, 2.0)  # kW, every quarter hour
    power[:4] = 6.0  # the first local hour at 6 kW
    out = AggregatorReporter({}).compute(
        {"load": beliefs(start, power, freq="15min")},
        start,
        end,
        "P1D",
        "Europe/Amsterdam",
        input_units={"load": "kW"},
        output_units={"energy": "kWh"},
    )
    expected = 6.0 * 1 + 2.0 * (hours - 1)
    assert out["energy"].tolist() == pytest.approx([expected])
    assert out["energy"].index[0] == pd.Timestamp(start).tz_convert("UTC")


def test_hourly_mean_power_from_quarter_hours_and_mwh_to_kw():
    quarter = beliefs(T0, [1.0, 2.0, 3.0, 6.0], freq="15min")  # kW
    energy = beliefs(T0, [0.002])  # MWh in the hour = 2 kW average
    out = AggregatorReporter({}).compute(
        {"a": quarter, "b": energy},
        T0,
        T0 + timedelta(hours=1),
        "PT1H",
        input_units={"a": "kW", "b": "MWh"},
        output_units={"total": "kW"},
    )
    assert out["total"].tolist() == pytest.approx([(1 + 2 + 3 + 6) / 4 + 2.0])


def test_nan_or_missing_input_drops_the_slot_and_the_day():
    start, end = local_day(2026, 6, 1)
    values = np.ones(24)
    values[5] = np.nan
    inputs = {"a": beliefs(start, values), "b": beliefs(start, np.ones(20))}
    units = {"a": "kW", "b": "kW"}
    hourly = AggregatorReporter({}).compute(
        inputs, start, end, "PT1H", "Europe/Amsterdam", input_units=units
    )["output"]
    expected_hours = [h for h in range(20) if h != 5]
    expected_index = [
        pd.Timestamp(start).tz_convert("UTC") + pd.Timedelta(hours=h) for h in expected_hours
    ]
    assert hourly.index.tolist() == expected_index
    assert hourly.tolist() == [2.0] * len(expected_hours)
    assert not hourly.isna().any()
    daily = AggregatorReporter({}).compute(
        inputs, start, end, "P1D", "Europe/Amsterdam", input_units=units, output_units={"e": "kWh"}
    )["e"]
    assert daily.empty


def test_weight_for_an_unknown_input_names_it():
    with pytest.raises(InputError) as err:
        AggregatorReporter({"weights": {"consumptoin": -1}}).compute(
            {"consumption": beliefs(T0, [1.0])}, T0, T0 + timedelta(hours=1), "PT1H"
        )
    assert err.value.field == "weights.consumptoin"


def test_missing_unit_is_required_only_when_it_matters():
    inputs = {"a": beliefs(T0, [1.0, 3.0])}
    same_grid = AggregatorReporter({}).compute(inputs, T0, T0 + timedelta(hours=2), "PT1H")
    assert same_grid["output"].tolist() == [1.0, 3.0]
    with pytest.raises(InputError, match="unit") as err:
        AggregatorReporter({}).compute(inputs, T0, T0 + timedelta(hours=2), "PT2H")
    assert err.value.field == "output_units.output"


def test_inputs_in_different_units_need_an_output_unit():
    inputs = {"a": beliefs(T0, [1.0]), "b": beliefs(T0, [1.0])}
    with pytest.raises(InputError) as err:
        AggregatorReporter({}).compute(
            inputs, T0, T0 + timedelta(hours=1), "PT1H", input_units={"a": "kW", "b": "MW"}
        )
    assert err.value.field == "output_units.output"
