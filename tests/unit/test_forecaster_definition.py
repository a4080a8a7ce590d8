"""Forecaster definitions: validation naming the field, the registry's kind and its versions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.registry import RegistryView, decode_entry, registry_key
from schemas import serde
from schemas.assets import Asset
from schemas.beliefs import Sensor
from schemas.deletion import check_forecaster_deletable, check_sensor_deletable, sensor_users
from schemas.documents import parse_model
from schemas.errors import InputError
from schemas.forecaster import Forecaster, forecaster_source, is_forecast_source
from streams.cli.forecasting import check_forecaster

PV = {
    "name": "pv-forecast",
    "sensor": "pv",
    "regressors": ["irradiance"],
    "holidays-country": "NL",
    "site": {"latitude": 52.0, "longitude": 5.1, "tilt": 35, "azimuth": 180},
    "max-forecast-horizon": "P2D",
    "resolution": "PT15M",
    "retrain-frequency": "P1D",
    "quantiles": [0.9, 0.1, 0.5],
}


def parse(data: dict) -> Forecaster:
    return parse_model(Forecaster, data, "forecaster")


def test_a_full_definition_reads_with_durations_and_sorted_quantiles():
    f = parse(PV)
    assert f.max_forecast_horizon == timedelta(days=2)
    assert f.resolution == timedelta(minutes=15)
    assert f.quantiles == (0.1, 0.5, 0.9)
    assert f.site is not None and f.site.tilt == 35
    assert f.source == "forecaster:pv-forecast" and is_forecast_source(f.source)
    assert not is_forecast_source("meter")
    # "horizon" is accepted as a short name of max-forecast-horizon
    assert parse({"name": "a", "sensor": "s", "horizon": "PT6H"}).max_forecast_horizon == (
        timedelta(hours=6)
    )


def test_the_definition_round_trips_through_its_json():
    f = parse(PV)
    again = parse(json.loads(f.model_dump_json(by_alias=True)))
    assert again == f


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"quantiles": [0.1, 0.9]}, "quantiles", "median 0.5"),
        ({"quantiles": [0.0, 0.5]}, "quantiles", "outside (0, 1)"),
        ({"quantiles": [0.5, 1.2]}, "quantiles", "outside (0, 1)"),
        ({"quantiles": []}, "quantiles", "e.g. [0.1, 0.5, 0.9]"),
        ({"max-forecast-horizon": "two days"}, "max-forecast-horizon", "ISO 8601"),
        ({"max-forecast-horizon": "PT0M"}, "max-forecast-horizon", "positive"),
        ({"retrain-frequency": "-P1D"}, "retrain", ""),
        ({"model": "prophet"}, "model", "lightgbm"),
        ({"site": {"latitude": 95, "longitude": 5}}, "site.latitude", "90"),
        ({"name": "a:b"}, "name", ""),
        ({"regressors": ["pv"]}, "regressors", "target sensor"),
        ({"colour": "red"}, "colour", ""),
    ],
)
def test_bad_definitions_are_refused_naming_the_field(change, field, says):
    with pytest.raises(InputError) as err:
        parse({**PV, **change})
    assert field in str(err.value) and says in str(err.value)


@given(st.lists(st.floats(0.01, 0.99), min_size=1, max_size=6))
def test_quantiles_come_out_sorted_unique_and_with_the_median(qs):
    f = parse({"name": "a", "sensor": "s", "quantiles": [*qs, 0.5]})
    assert list(f.quantiles) == sorted(set(f.quantiles)) and 0.5 in f.quantiles


def test_the_step_is_the_own_resolution_else_the_sensors():
    f = parse({"name": "a", "sensor": "s"})
    assert f.step(timedelta(hours=1)) == timedelta(hours=1)
    assert f.step(timedelta(0)) == timedelta(minutes=15)
    assert parse(PV).step(timedelta(hours=1)) == timedelta(minutes=15)


def registry_event(kind: str, name: str, body: str, schema_id: int | None = None) -> bytes:
    rec = {"kind": kind, "name": name, "body": body, "updated_at": datetime.now(UTC)}
    return serde.encode("RegistryEvent", rec, schema_id)


def test_version_1_events_still_read_and_forecasters_use_version_2():
    sensor = Sensor(name="pv", unit="kW")
    old = registry_event("sensor", "pv", sensor.model_dump_json(by_alias=True), schema_id=5)
    assert serde.schema_id_of(old) == 5
    assert decode_entry(old) == ("sensor", "pv", sensor)
    f = parse(PV)
    new = registry_event("forecaster", f.name, f.model_dump_json(by_alias=True))
    assert serde.schema_id_of(new) == 11
    assert decode_entry(new) == ("forecaster", f.name, f)
    # The version 1 schema cannot carry the new kind: old writers never wrote one.
    with pytest.raises(ValueError):
        registry_event("forecaster", f.name, "{}", schema_id=5)


def test_the_view_keeps_forecasters_apart_and_their_tombstones_touch_nothing_else():
    view = RegistryView({"bootstrap.servers": "unused:1"}, "registry")
    seen = []
    view.add_listener(lambda kind, name, model: seen.append((kind, name, model is None)))
    f = parse({**PV, "name": "pv"})
    asset = Asset.model_validate({"name": "pv"})
    view._apply(b"asset:pv", registry_event("asset", "pv", asset.model_dump_json()), 0, 0)
    view._apply(b"forecaster:pv", registry_event("forecaster", "pv", f.model_dump_json()), 0, 1)
    assert view.forecasters == {"pv": f} and view.assets == {"pv": asset}
    assert view.forecasters_of("pv") == [f] and view.forecasters_of("load") == []
    view._apply(registry_key("forecaster", "pv").encode(), None, 0, 2)
    assert view.forecasters == {} and view.assets == {"pv": asset}
    view._apply(b"unknown-kind:pv", None, 0, 3)
    assert view.assets == {"pv": asset}
    assert seen == [("asset", "pv", False), ("forecaster", "pv", False), ("forecaster", "pv", True)]


def test_a_sensor_a_forecaster_uses_cannot_be_deleted_and_unknown_forecasters_are_named():
    f = parse(PV)
    sensors = {n: Sensor(name=n, unit="kW") for n in ("pv", "irradiance", "spare")}
    forecasters = {f.name: f}
    assert sensor_users("pv", {}, {}, forecasters) == ["forecaster 'pv-forecast'"]
    assert sensor_users("irradiance", {}, {}, forecasters) == ["forecaster 'pv-forecast'"]
    with pytest.raises(InputError, match="referenced by forecaster 'pv-forecast'"):
        check_sensor_deletable("irradiance", sensors, {}, {}, forecasters)
    check_sensor_deletable("spare", sensors, {}, {}, forecasters)
    with pytest.raises(InputError, match="show forecasters"):
        check_forecaster_deletable("ghost", forecasters)
    check_forecaster_deletable("pv-forecast", forecasters)


def test_registration_needs_the_target_and_regressors_registered():
    f = parse(PV)
    with pytest.raises(InputError, match=r"regressors\[0\].*'irradiance' is not registered"):
        check_forecaster(f, {"pv": Sensor(name="pv", unit="kW")})
    check_forecaster(f, {n: Sensor(name=n, unit="kW") for n in ("pv", "irradiance")})
    assert forecaster_source("x") == "forecaster:x"


def test_a_resolution_other_than_the_targets_is_refused():
    hourly = {
        "pv": Sensor(name="pv", unit="kW", event_resolution="PT1H"),
        "irradiance": Sensor(name="irradiance", unit="W/m**2"),
    }
    with pytest.raises(InputError, match=r"resolution: PT15M differs from sensor 'pv'.*PT1H"):
        check_forecaster(parse(PV), hourly)
    soc = {**hourly, "pv": Sensor(name="pv", unit="kWh", event_resolution="PT0M")}
    check_forecaster(parse(PV), soc)  # an instantaneous sensor takes any spacing


def test_accuracy_rows_print_metrics_per_forecaster_and_bucket():
    from streams.cli.forecasting import accuracy_rows

    rows = [
        [
            "forecaster:a",
            0,
            3600,
            "4",
            0.5,
            0.25,
            0.2,
            1.0,
            0.5,
            {"0.5": 1.0, "0.1": 0.4},
            "t0",
            "t1",
        ],
        ["forecaster:b", 172800, 4294967295, "2", 1, None, 1, 1, 0, {}, "t0", "t1"],
    ]
    out = accuracy_rows(rows)
    assert [(r["forecaster"], r["horizon"], r["pairs"]) for r in out] == [
        ("a", "0-1 h", 4),
        ("b", "48 h-", 2),
    ]
    assert out[0]["skill"] == "0.5" and out[0]["pinball 0.1"] == "0.1" and out[1]["WAPE"] == ""
    assert list(out[0]).index("pinball 0.1") < list(out[0]).index("pinball 0.5")
    assert [r["forecaster"] for r in accuracy_rows(rows, "b")] == ["b"]
