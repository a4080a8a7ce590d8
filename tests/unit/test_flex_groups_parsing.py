"""Groups, inflexible entries and operation modes in flex-model JSON: meanings and errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from schemas.errors import InputError
from schemas.flex_groups import DEFAULT_GROUP_BREACH_PRICE
from schemas.flex_request import parse_site_problem

START = "2024-05-01T00:00+00:00"
CTX = {"consumption-price": "0.1 EUR/kWh"}
BAT = {"sensor": "bat", "soc-at-start": "1 kWh", "soc-max": "10 kWh", "power-capacity": "5 kW"}


def parse(fm: Any, ctx: Any = CTX) -> Any:
    return parse_site_problem(fm, ctx, START, "PT2H", "PT1H")


def bat(**fields: Any) -> dict[str, Any]:
    return {**BAT, **fields}


IN_INV = {"group": {"sensor": "inv"}}
INV = {"sensor": "inv", "power-capacity": "6 kW"}


def test_a_group_entry_holds_its_capacities_members_and_inflexible_power():
    """Directional capacities are capped by power-capacity and priced at FlexMeasures' default."""
    fm = [
        bat(**IN_INV),
        {"sensor": "pv", "inflexible-production": "4 kW", "group": 15},
        {"sensor": "load", "inflexible-consumption": "1 kW"},
        {"sensor": 15, "consumption-capacity": "2 kW", "production-capacity": "9 kW", **IN_INV},
        {**INV, "production": {"sensor": "inv-out"}},
    ]
    p = parse(fm)
    assert [d.name for d in p.devices] == ["bat"]
    np.testing.assert_allclose(p.inflexible_power, [-3.0, -3.0])  # 1 kW load - 4 kW PV
    inner, outer = p.groups
    assert (inner.name, inner.members, outer.name, outer.members) == ("15", [], "inv", ["bat"])
    np.testing.assert_allclose(inner.inflexible_power, [-4.0, -4.0])
    np.testing.assert_allclose(outer.inflexible_power, [-4.0, -4.0])  # the nested PV counts
    np.testing.assert_allclose(inner.power_capacity, [np.inf, np.inf])
    np.testing.assert_allclose(inner.consumption_capacity, [2.0, 2.0])
    np.testing.assert_allclose(inner.consumption_breach_price, [DEFAULT_GROUP_BREACH_PRICE] * 2)
    np.testing.assert_allclose(outer.power_capacity, [6.0, 6.0])
    np.testing.assert_allclose(outer.consumption_capacity, [np.nan, np.nan])
    assert outer.consumption_breach_price is None
    assert outer.outputs == {"production": {"sensor": "inv-out"}}


@pytest.mark.parametrize(
    ("fm", "field", "words"),
    [
        ([bat(**IN_INV)], "flex-model[0].group", 'add an entry {"sensor": "inv"'),
        ([bat(group={"sensor": 1, "asset": 2}), INV], "flex-model[0].group", "exactly one"),
        ([bat(group={"sensors": [1]}), INV], "flex-model[0].group.sensors", "'sensor' or 'asset'"),
        ([bat(group=True), INV], "flex-model[0].group.sensor", "id or a name"),
        ([bat(**IN_INV), {**INV, "soc-max": "1 kWh"}], "flex-model[1].soc-max", "member device"),
        ([bat(**IN_INV), {"sensor": "inv"}], "flex-model[1].power-capacity", "limits nothing"),
        ([bat(**IN_INV), {**INV, "power-capacty": "1 kW"}], "flex-model[1].power-capacty", "did"),
        (
            [
                bat(**IN_INV),
                {**INV, "group": {"sensor": "f"}},
                {"sensor": "f", "power-capacity": "1 kW", **IN_INV},
            ],
            "flex-model[1].group",
            "cycle (inv -> f -> inv)",
        ),
        ([bat(**IN_INV), {**INV, **IN_INV}], "flex-model[1].group", "cycle"),
        (
            [bat(group={"asset": 7}), {"asset": 7, "sensor": "x", "power-capacity": "1 kW"}],
            "flex-model[1].sensor",
            "leave out 'sensor'",
        ),
        ([bat(**IN_INV), {**INV, "commodity": "gas"}], "flex-model[1].commodity", "electricity"),
        (bat(**IN_INV), "flex-model.group", "need a list of flex-models"),
        ({**BAT, "inflexible-consumption": "1 kW"}, "flex-model.inflexible-consumption", "list"),
        (
            [BAT, {"inflexible-consumption": "1 kW", "inflexible-production": "1 kW"}],
            "flex-model[1].inflexible-production",
            "not both",
        ),
        (
            [BAT, {"inflexible-consumption": "1 kW", "soc-max": "1 kWh"}],
            "flex-model[1].soc-max",
            "measured, not scheduled",
        ),
        ([BAT, {"inflexible-production": "-1 kW"}], "flex-model[1].inflexible-production", "magn"),
        ([BAT, bat(**IN_INV, sensor="inv")], "flex-model[1].soc-at-start", "member device"),
        (
            [{"sensor": "p", "power": "2 kW", "duration": "PT1H", "operation-modes": []}],
            "flex-model[0].operation-modes",
            "not a field of this kind of entry",
        ),
        (
            [bat(coupling="chp")],
            "flex-model[0].coupling",
            "one port only",
        ),
    ],
)
def test_group_errors_name_the_field(fm, field, words):
    with pytest.raises(InputError) as info:
        parse(fm)
    assert info.value.field == field
    assert words in str(info.value)


MODE_CASES = [
    ([], "flex-model.operation-modes", "non-empty list"),
    ("2 kW", "flex-model.operation-modes", "non-empty list"),
    ([{}], "flex-model.operation-modes[0]", "consumption-range and/or"),
    (["2 kW"], "flex-model.operation-modes[0]", "as an object"),
    ([{"power-range": [0, 1]}], "flex-model.operation-modes[0].power-range", "only"),
    ([{"consumption-range": ["1 kW"]}], "flex-model.operation-modes[0].consumption-range", "two"),
    (
        [{"consumption-range": ["0 kW", "0 kW"]}, {"consumption-range": ["-1 kW", "2 kW"]}],
        "flex-model.operation-modes[1].consumption-range",
        "move the negative part (with its sign flipped) to the mode's production-range",
    ),
    (
        [{"production-range": ["3 kW", "2 kW"]}],
        "flex-model.operation-modes[0].production-range",
        "the minimum (3 kW) exceeds the maximum (2 kW)",
    ),
    (
        [{"consumption-range": ["1 kW", "2 kW"], "production-range": ["0 kW", "2 kW"]}],
        "flex-model.operation-modes[0]",
        "both must start at 0",
    ),
    (
        [{"consumption-range": ["1 kWh", "2 kW"]}],
        "flex-model.operation-modes[0].consumption-range[0]",
        "",
    ),
]


@pytest.mark.parametrize(("modes", "field", "words"), MODE_CASES)
def test_operation_mode_errors_name_the_field(modes, field, words):
    with pytest.raises(InputError) as info:
        parse(bat(**{"operation-modes": modes}))
    assert info.value.field == field
    assert words in str(info.value)


def test_bare_mode_numbers_are_mw_as_in_flexmeasures():
    p = parse(bat(**{"operation-modes": [{"consumption-range": [0.002, 0.003]}]}))
    assert p.devices[0].operation_modes == ((2.0, 3.0),)
