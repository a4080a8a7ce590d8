"""Quantities and unit conversion with pint: parsing, factors, currencies that never convert."""

from __future__ import annotations

import pytest

from schemas.errors import InputError
from schemas.units import conversion_factor, is_convertible, parse_quantity, unit


def test_power_quantity():
    q = parse_quantity("2 MW", "power")
    assert q.to("kW").magnitude == pytest.approx(2000.0)


@pytest.mark.parametrize(("text", "value"), [("95%", 0.95), (" 5 % ", 0.05), ("100%", 1.0)])
def test_percent_is_a_dimensionless_fraction(text, value):
    q = parse_quantity(text, "soc-max")
    assert q.dimensionless
    assert q.magnitude == pytest.approx(value)


@pytest.mark.parametrize(("given", "value"), [(3, 3.0), (2.5, 2.5), ("7", 7.0), (" -1.5 ", -1.5)])
def test_bare_numbers_are_dimensionless(given, value):
    q = parse_quantity(given, "x")
    assert q.dimensionless
    assert q.magnitude == value


def test_price_quantity_converts_between_energy_prefixes():
    q = parse_quantity("100 EUR/MWh", "price")
    assert q.to("EUR/kWh").magnitude == pytest.approx(0.1)
    assert parse_quantity("25 ct/kWh", "price").to("EUR/MWh").magnitude == pytest.approx(250.0)


@pytest.mark.parametrize("bad", ["garbage", "%", "", "   ", "(", "1/0", "2 kW +", True, None, [1]])
def test_garbage_raises_input_error_naming_the_field(bad):
    with pytest.raises(InputError) as info:
        parse_quantity(bad, "flex-model.soc-max")
    err = info.value
    assert isinstance(err, ValueError)
    assert err.field == "flex-model.soc-max"
    assert str(err).startswith("flex-model.soc-max: ")
    assert "2 MW" in str(err)


@pytest.mark.parametrize(
    ("src", "dst", "factor"),
    [
        ("MW", "kW", 1000.0),
        ("kW", "MW", 0.001),
        ("EUR/kWh", "EUR/MWh", 1000.0),
        ("ct/kWh", "EUR/MWh", 10.0),
        ("MWh", "kWh", 1000.0),
        ("kg/MWh", "g/kWh", 1.0),
        ("kW", "kW", 1.0),
    ],
)
def test_conversion_factor(src, dst, factor):
    assert conversion_factor(src, dst) == pytest.approx(factor)


@pytest.mark.parametrize(("src", "dst"), [("EUR", "USD"), ("EUR/MWh", "GBP/MWh"), ("kW", "kWh")])
def test_incompatible_units_do_not_convert(src, dst):
    assert not is_convertible(src, dst)
    with pytest.raises(InputError) as info:
        conversion_factor(src, dst, "price-unit")
    assert info.value.field == "price-unit"
    assert f"cannot be converted to {dst!r}" in str(info.value)


def test_is_convertible_is_false_for_unknown_units():
    assert is_convertible("MW", "kW")
    assert not is_convertible("florps", "kW")
    assert not is_convertible("(", "kW")


@pytest.mark.parametrize("bad", ["florps", "(", "1/0", "kW +"])
def test_unknown_unit_raises_input_error(bad):
    with pytest.raises(InputError) as info:
        unit(bad)
    assert info.value.field == "unit"
    assert repr(bad) in str(info.value)
