"""Flex-model / flex-context JSON into a SiteProblem: units, defaults, errors, resolver hook."""

import numpy as np
import pandas as pd
import pytest

from schemas.errors import InputError
from schemas.flex_request import (
    DEFAULT_CAPACITY_BREACH_PRICE,
    DEFAULT_SOC_BREACH_PRICE,
    parse_site_problem,
)
from solvers import ProcessType, Status, schedule

START = "2024-05-01T00:00+00:00"
BAT = {
    "sensor": "bat",
    "soc-at-start": "0.01 MWh",
    "soc-max": "40 kWh",
    "power-capacity": "0.01 MW",
}
CTX = {"consumption-price": "100 EUR/MWh"}


def parse(fm=BAT, ctx=CTX, duration="PT4H", resolution="PT1H", **kw):
    return parse_site_problem(fm, ctx, START, duration, resolution, **kw)


def test_units_are_converted_to_kw_kwh_and_currency_per_kwh():
    p = parse()
    (bat,) = p.devices
    assert bat.soc_at_start == pytest.approx(10.0)
    assert bat.soc_max[0] == pytest.approx(40.0)
    np.testing.assert_allclose(bat.consumption_capacity, 10.0)
    np.testing.assert_allclose(p.consumption_price, 0.1)
    np.testing.assert_allclose(p.production_price, 0.1)
    assert p.currency == "EUR"


def test_segments_and_soc_points():
    fm = dict(
        BAT,
        **{
            "soc-targets": [{"datetime": "2024-05-01T02:00+00:00", "value": "30 kWh"}],
            "soc-minima": [{"start": "2024-05-01T01:00Z", "duration": "PT1H", "value": "5 kWh"}],
            "soc-usage": [
                {"start": "2024-05-01T03:00Z", "end": "2024-05-01T04:00Z", "value": "2 kW"}
            ],
        },
    )
    ctx = {
        "consumption-price": [
            {"start": START, "duration": "PT2H", "value": "50 EUR/MWh"},
            {"start": "2024-05-01T02:00+00:00", "duration": "PT2H", "value": "150 EUR/MWh"},
        ]
    }
    p = parse(fm, ctx)
    bat = p.devices[0]
    np.testing.assert_allclose(p.consumption_price, [0.05, 0.05, 0.15, 0.15])
    assert bat.soc_targets[2] == 30 and np.isnan(bat.soc_targets[[0, 1, 3, 4]]).all()
    np.testing.assert_allclose(bat.soc_minima[[1, 2]], 5)
    np.testing.assert_allclose(bat.soc_usage, [0, 0, 0, 2])


def test_roundtrip_and_storage_efficiency_per_resolution():
    fm = dict(
        BAT,
        **{
            "roundtrip-efficiency": "81%",
            "storage-efficiency": {"value": "99%", "resolution": "PT1H"},
        },
    )
    bat = parse(fm, duration="PT1H", resolution="PT15M").devices[0]
    np.testing.assert_allclose(bat.charging_efficiency, 0.9)
    np.testing.assert_allclose(bat.discharging_efficiency, 0.9)
    np.testing.assert_allclose(bat.storage_efficiency, 0.99**0.25)
    bat = parse(dict(BAT, **{"storage-efficiency": "99%"}), resolution="PT15M").devices[0]
    np.testing.assert_allclose(bat.storage_efficiency, 0.99)


def test_co2_intensity_as_price():
    p = parse(ctx={"consumption-price": "350 kg/MWh"})
    assert p.currency == "kg"
    np.testing.assert_allclose(p.consumption_price, 0.35)


def test_relax_constraints_sets_default_breach_prices():
    p = parse(ctx=dict(CTX, **{"relax-constraints": True, "site-power-capacity": "1 MW"}))
    assert p.breach_prices.soc_minima == DEFAULT_SOC_BREACH_PRICE
    np.testing.assert_allclose(p.breach_prices.site_consumption, DEFAULT_CAPACITY_BREACH_PRICE)
    np.testing.assert_allclose(p.site_consumption_capacity, 1000.0)
    # relax-constraints defaults to true, as in FlexMeasures 1.0.
    assert parse().breach_prices.soc_minima == DEFAULT_SOC_BREACH_PRICE
    assert parse(ctx=dict(CTX, **{"relax-constraints": False})).breach_prices.soc_minima is None


def test_capacity_breach_price_per_energy_is_scaled_by_step_length():
    ctx = dict(CTX, **{"site-consumption-breach-price": "100 EUR/kWh"})
    p = parse(ctx=ctx, resolution="PT15M")
    np.testing.assert_allclose(p.breach_prices.site_consumption, 25.0)


def test_process_model():
    fm = {
        "sensor": "wash",
        "power": "5 kW",
        "duration": "PT90M",
        "process-type": "BREAKABLE",
        "time-restrictions": [{"start": "2024-05-01T00:30Z", "duration": "PT1H"}],
    }
    (proc,) = parse(fm).devices
    assert proc.process_type is ProcessType.BREAKABLE
    assert proc.duration_steps == 2
    np.testing.assert_array_equal(proc.allowed, [False, False, True, True])


@pytest.mark.parametrize(
    ("fm", "ctx", "field"),
    [
        (dict(BAT, **{"soc-max": "40 kW"}), CTX, "flex-model.soc-max"),
        (dict(BAT, **{"soc-mx": "40 kWh"}), CTX, "flex-model.soc-mx"),
        (dict(BAT, **{"soc-at-start": {"sensor": "soc"}}), CTX, "flex-model.soc-at-start"),
        ({k: v for k, v in BAT.items() if k != "power-capacity"}, CTX, "flex-model.power-capacity"),
        (dict(BAT, **{"roundtrip-efficiency": "120%"}), CTX, "flex-model.roundtrip-efficiency"),
        (BAT, {"consumption-price": "100 EUR"}, "consumption-price"),
        (
            BAT,
            {"consumption-price": "100 EUR/MWh", "production-price": "1 USD/MWh"},
            "production-price",
        ),
        ([BAT, BAT], CTX, "flex-model[1].sensor"),
        (
            [
                BAT,
                dict(
                    BAT,
                    sensor="b2",
                    **{"soc-targets": [{"datetime": "2024-05-01T00:20", "value": "1 kWh"}]},
                ),
            ],
            CTX,
            "flex-model[1].soc-targets[0].datetime",
        ),
        (
            dict(BAT, **{"soc-targets": [{"datetime": "2024-05-01T02:00", "value": "1 kWh"}]}),
            CTX,
            "flex-model.soc-targets[0].datetime",
        ),
        (dict(BAT, **{"power-capacity": {"sensor": "cap"}}), CTX, "flex-model.power-capacity"),
        (
            BAT,
            {"consumption-price": [{"start": START, "duration": "PT1H", "value": "1 EUR/MWh"}]},
            "consumption-price",
        ),
    ],
)
def test_bad_input_names_the_field(fm, ctx, field):
    with pytest.raises(InputError) as info:
        parse(fm, ctx)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_naive_start_is_rejected():
    with pytest.raises(InputError, match="timezone") as info:
        parse_site_problem(BAT, CTX, "2024-05-01T00:00", "PT4H", "PT1H")
    assert info.value.field == "start"


def test_duration_must_hold_whole_steps():
    with pytest.raises(InputError) as info:
        parse(duration="PT70M", resolution="PT15M")
    assert info.value.field == "duration"


def test_sensor_references_go_through_the_resolver():
    idx = pd.date_range(START, periods=4, freq="1h")
    series = pd.Series([50.0, 50.0, 150.0, 150.0], index=idx)
    series.attrs["unit"] = "EUR/MWh"
    seen = []

    def resolve(ref, field):
        seen.append((ref["sensor"], field))
        return series

    p = parse(ctx={"consumption-price": {"sensor": "price-nl"}}, resolver=resolve)
    np.testing.assert_allclose(p.consumption_price, [0.05, 0.05, 0.15, 0.15])
    assert ("price-nl", "consumption-price") in seen
    with pytest.raises(InputError, match="offline"):
        parse(ctx={"consumption-price": {"sensor": "price-nl"}})


def test_parsed_request_schedules_end_to_end():
    fm = dict(BAT, **{"soc-targets": [{"datetime": "2024-05-01T04:00Z", "value": "40 kWh"}]})
    r = schedule(parse(fm))
    assert r.status is Status.OPTIMAL
    assert r.schedule_of("bat").soc[-1] == pytest.approx(40)
    out = r.to_json("MW")
    assert out["schedules"][0]["state-of-charge"][-1] == pytest.approx(0.04)
