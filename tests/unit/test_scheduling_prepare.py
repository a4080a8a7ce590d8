"""Resolving schedule requests against the registry and a belief lookup (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from schemas.assets import Asset, effective_flex_context, parent_cycle
from schemas.beliefs import Sensor
from schemas.errors import InputError
from solvers import Status
from streams.scheduling import problem as scheduling

T0 = datetime(2026, 6, 10, tzinfo=UTC)
SENSORS = {
    s.name: s
    for s in [
        Sensor(name="bat", unit="kW", event_resolution="PT15M"),
        Sensor(name="bat-soc", unit="kWh", event_resolution="PT0M"),
        Sensor(name="price", unit="EUR/MWh", event_resolution="PT1H"),
    ]
}


class Lookup:
    def __init__(self, prices: dict[datetime, float], soc: tuple[datetime, float] | None):
        self.prices, self.soc = prices, soc

    def series(self, sensor, start, end):
        items = sorted((t, v) for t, v in self.prices.items() if t < end)
        s = pd.Series([v for _, v in items], index=pd.DatetimeIndex([t for t, _ in items]))
        s.attrs["resolution"] = timedelta(hours=1)
        return s

    def latest_at(self, sensor, at):
        return self.soc if self.soc and self.soc[0] <= at else None


def assets(**replan) -> dict[str, Asset]:
    site = Asset.model_validate(
        {"name": "site", "flex-context": {"consumption-price": {"sensor": "price"}}}
    )
    home = Asset.model_validate(
        {
            "name": "home",
            "parent": "site",
            "flex-model": {
                "sensor": "bat",
                "soc-at-start": {"sensor": "bat-soc"},
                "soc-max": "10 kWh",
                "power-capacity": "5 kW",
            },
        }
    )
    return {"site": site, "home": home}


def request(hours=4, **kw):
    r = {
        "request_id": "r",
        "asset": "home",
        "start": T0,
        "duration_ms": hours * 3_600_000,
        "resolution_ms": 900_000,
    }
    r.update(kw)
    return r


def prices(hours):
    return {T0 + timedelta(hours=h): 100.0 * (h % 2) for h in range(hours)}


def test_prices_from_the_parent_context_and_soc_from_the_lookup_make_a_problem():
    p = scheduling.prepare(request(), assets(), SENSORS, Lookup(prices(4), (T0, 3.0)))
    assert p.devices == ["bat"] and p.soc_sensors == {"bat": "bat-soc"}
    assert p.problem.grid.n == 16
    result, ms = scheduling.solve(p)
    assert result.status == Status.OPTIMAL and ms > 0
    records = scheduling.answer(request(), p, result, ms, T0)
    [rec] = records
    assert rec.state_of_charge[0] == pytest.approx(3.0)
    assert rec.answered_devices == ["bat"]
    beliefs = scheduling.as_beliefs(records, p.soc_sensors)
    assert beliefs.sensor == ["bat", "bat-soc"] and beliefs.counts == [16, 17]
    assert set(beliefs.source) == {scheduling.SCHEDULER_SOURCE}


def test_missing_prices_name_the_sensor_and_the_uncovered_span():
    with pytest.raises(scheduling.MissingInput) as exc:
        scheduling.prepare(request(hours=6), assets(), SENSORS, Lookup(prices(4), (T0, 3.0)))
    msg = str(exc.value)
    assert "'price'" in msg and "8 of 24 steps" in msg
    assert "2026-06-10T04:00:00Z to 2026-06-10T06:00:00Z" in msg
    assert exc.value.field == "consumption-price"


def test_state_of_charge_as_flexmeasures_users_write_it_gives_soc_at_start_and_receives_the_soc():
    home = assets()["home"].model_dump(by_alias=True, exclude_none=True)
    [fm] = home["flex-model"] if isinstance(home["flex-model"], list) else [home["flex-model"]]
    fm.pop("soc-at-start")
    fm["state-of-charge"] = {"sensor": "bat-soc"}
    reg = {**assets(), "home": Asset.model_validate({**home, "flex-model": fm})}
    p = scheduling.prepare(request(), reg, SENSORS, Lookup(prices(4), (T0, 4.0)))
    assert p.soc_sensors == {"bat": "bat-soc"}
    result, ms = scheduling.solve(p)
    [rec] = scheduling.answer(request(), p, result, ms, T0)
    assert rec.state_of_charge[0] == pytest.approx(4.0)
    with pytest.raises(scheduling.MissingInput) as exc:
        scheduling.prepare(request(), reg, SENSORS, Lookup(prices(4), None))
    assert exc.value.field == "flex-model[0].state-of-charge"


def test_missing_soc_says_which_sensor():
    with pytest.raises(scheduling.MissingInput, match="bat-soc"):
        scheduling.prepare(request(), assets(), SENSORS, Lookup(prices(4), None))


def test_overrides_and_bad_requests():
    a = assets()
    override = json.dumps({"sensor": "bat", "soc-max": "4 kWh"})
    p = scheduling.prepare(request(flex_model=override), a, SENSORS, Lookup(prices(4), (T0, 3.0)))
    assert p.problem.devices[0].soc_max == pytest.approx(4.0)
    with pytest.raises(InputError, match="not registered"):
        scheduling.prepare(request(asset="ghost"), a, SENSORS, Lookup(prices(4), (T0, 3.0)))
    with pytest.raises(InputError, match="not in asset"):
        scheduling.prepare(request(devices=["nope"]), a, SENSORS, Lookup(prices(4), (T0, 3.0)))


def test_failures_answer_every_device():
    recs = scheduling.failure(request(), ["a", "b"], Status.ERROR, "no prices", T0)
    assert [(r.sensor, r.status, r.answered_devices) for r in recs] == [
        ("a", "error", ["a", "b"]),
        ("b", "error", ["a", "b"]),
    ]


def test_validate_asset_checks_units_and_sensor_references():
    a = assets()
    scheduling.validate_asset(a["home"], a, SENSORS)
    bad = Asset.model_validate(
        {
            "name": "x",
            "flex-model": {
                "sensor": "bat",
                "soc-at-start": "2 kWh",
                "soc-max": "10 kW",
                "power-capacity": "5 kW",
            },
        }
    )
    with pytest.raises(InputError, match="soc-max"):
        scheduling.validate_asset(bad, a, SENSORS)


@pytest.mark.parametrize(
    ("override", "field", "says"),
    [
        ({"flex_model": "{not json"}, "flex_model", "is not valid JSON (Expecting property name"),
        ({"flex_model": "[1]"}, "flex_model[0]", "expected a JSON object"),
        ({"flex_model": '"soc-max"'}, "flex_model", "expected a JSON object"),
        ({"flex_context": "{'single': 'quotes'}"}, "flex_context", "is not valid JSON"),
        ({"flex_context": '[{"site-power-capacity": "1 kW"}]'}, "flex_context", "JSON object"),
    ],
)
def test_a_bad_override_is_answered_invalid_naming_the_field(override, field, says):
    lookup = Lookup(prices(4), (T0, 3.0))
    with pytest.raises(InputError) as exc:
        scheduling.prepare(request(**override), assets(), SENSORS, lookup)
    assert exc.value.field == field and says in str(exc.value)
    prepared, answers = scheduling.prepare_or_fail(
        request(**override), assets(), SENSORS, lookup, T0
    )
    assert prepared is None
    assert [(a.sensor, a.status) for a in answers] == [("bat", "invalid")]
    assert answers[0].message.startswith(f"{field}: ")


@pytest.mark.parametrize("rid", ["", "   "])
def test_a_request_without_an_id_is_answered_invalid_naming_request_id(rid):
    lookup = Lookup(prices(4), (T0, 3.0))
    prepared, answers = scheduling.prepare_or_fail(
        request(request_id=rid), assets(), SENSORS, lookup, T0
    )
    assert prepared is None
    [answer] = answers
    assert answer.status == "invalid" and answer.request_id == rid
    assert answer.message.startswith("request_id: the request has no id")


def test_prepare_or_fail_answers_missing_beliefs_with_error_and_prepares_the_rest():
    prepared, answers = scheduling.prepare_or_fail(
        request(), assets(), SENSORS, Lookup(prices(4), None), T0
    )
    assert prepared is None and [a.status for a in answers] == ["error"]
    prepared, answers = scheduling.prepare_or_fail(
        request(), assets(), SENSORS, Lookup(prices(4), (T0, 3.0)), T0
    )
    assert prepared is not None and answers == []


def _asset(name: str, parent: str | None, **kw) -> Asset:
    return Asset.model_validate({"name": name, "parent": parent, **kw})


@pytest.mark.parametrize(
    ("registry", "new", "loop"),
    [
        ({}, _asset("a", "a"), "a -> a"),
        ({"b": _asset("b", "a")}, _asset("a", "b"), "a -> b -> a"),
        ({"b": _asset("b", "c"), "c": _asset("c", "a")}, _asset("a", "b"), "a -> b -> c -> a"),
    ],
)
def test_registering_a_parent_loop_is_refused_naming_parent_and_the_loop(registry, new, loop):
    with pytest.raises(InputError) as exc:
        scheduling.validate_asset(new, registry, SENSORS)
    assert exc.value.field == "parent"
    assert f"asset 'a' is its own ancestor ({loop})" in str(exc.value)


def test_an_asset_whose_parents_lead_into_an_older_loop_is_refused():
    registry = {"c": _asset("c", "d"), "d": _asset("d", "c")}
    with pytest.raises(InputError) as exc:
        scheduling.validate_asset(_asset("e", "c"), registry, SENSORS)
    assert exc.value.field == "parent" and "lead into a loop (c -> d -> c)" in str(exc.value)
    # Giving one of them another parent is accepted.
    scheduling.validate_asset(_asset("d", None), registry, SENSORS)
    scheduling.validate_asset(_asset("e", "c"), {**registry, "d": _asset("d", None)}, SENSORS)


def test_a_registry_with_a_parent_loop_gets_an_invalid_answer_not_an_endless_walk():
    # Written before registration refused loops: home -> site -> home.
    a = assets()
    a["site"] = _asset("site", "home", **{"flex-context": a["site"].flex_context})
    with pytest.raises(InputError) as exc:
        effective_flex_context("home", a)
    assert exc.value.field == "parent" and "home -> site -> home" in str(exc.value)
    assert parent_cycle("site", a) == ["site", "home", "site"]
    assert parent_cycle("home", assets()) is None
    prepared, answers = scheduling.prepare_or_fail(
        request(), a, SENSORS, Lookup(prices(4), (T0, 3.0)), T0
    )
    assert prepared is None and [x.status for x in answers] == ["invalid"]
    assert answers[0].message.startswith("parent: asset 'home' is its own ancestor")


def test_inherited_commodities_merge_per_commodity():
    site = Asset(
        name="site",
        **{
            "flex-context": {
                "consumption-price": "30 EUR/MWh",
                "commodities": [
                    {"commodity": "gas", "consumption-price": "40 EUR/MWh"},
                    {"commodity": "heat", "site-power-capacity": "20 kW"},
                ],
            }
        },
    )
    home = Asset(
        name="home",
        parent="site",
        **{
            "flex-context": {
                "commodities": [
                    {"commodity": "heat", "consumption-price": "90 EUR/MWh"},
                    {"commodity": "hydrogen", "consumption-price": "5 EUR/kg"},
                ]
            }
        },
    )
    merged = effective_flex_context("home", {"site": site, "home": home})
    assert merged["consumption-price"] == "30 EUR/MWh"
    assert merged["commodities"] == [
        {"commodity": "gas", "consumption-price": "40 EUR/MWh"},
        {"commodity": "heat", "site-power-capacity": "20 kW", "consumption-price": "90 EUR/MWh"},
        {"commodity": "hydrogen", "consumption-price": "5 EUR/kg"},
    ]
    # The registry's own objects are left as they were.
    heat = site.flex_context["commodities"][1]
    assert heat == {"commodity": "heat", "site-power-capacity": "20 kW"}
