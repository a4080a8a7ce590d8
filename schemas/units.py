"""Units and quantities, parsed with pint.

One shared registry knows energy, power, prices (currency per energy) and
emission intensities (mass per energy), so ``"100 EUR/MWh"`` and
``"350 kg/MWh"`` are both ordinary quantities. A currency is a base dimension
of its own: EUR and USD never convert into each other.
"""

from __future__ import annotations

from functools import lru_cache

import pint

from schemas.errors import InputError

ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
ureg.define("EUR = [currency_eur]")
ureg.define("ct = 0.01 EUR = EURct")
ureg.define("USD = [currency_usd]")
ureg.define("GBP = [currency_gbp]")
ureg.define("KRW = [currency_krw]")
ureg.define("JPY = [currency_jpy]")
Q_ = ureg.Quantity

#: Currencies known to the registry, by code.
CURRENCIES = ("EUR", "USD", "GBP", "KRW", "JPY")


def parse_quantity(text: str | float | int, field: str) -> pint.Quantity:
    """Parse ``"2 MW"``, ``"95%"`` or a bare number into a pint quantity.

    ``field`` names the input field in the error message.
    """
    if isinstance(text, bool):
        raise InputError(f"expected a quantity such as '2 MW', got {text!r}", field)
    if isinstance(text, int | float):
        return Q_(float(text), "")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"expected a quantity such as '2 MW', got {text!r}", field)
    s = text.strip()
    try:
        if s.endswith("%"):
            return Q_(float(s[:-1]) / 100.0, "")
        q = ureg.Quantity(s)
    except Exception as exc:  # noqa: BLE001 - pint's parser raises many types on garbage ("1/0", "(")
        raise InputError(
            f"cannot read {text!r} as a quantity ({exc}); write a number and a unit, "
            "e.g. '2 MW', '90 kWh', '100 EUR/MWh' or '95%'",
            field,
        ) from None
    if not isinstance(q, pint.Quantity):
        q = Q_(float(q), "")
    return q


@lru_cache(maxsize=512)
def unit(name: str) -> pint.Unit:
    """Return the pint unit for ``name`` (e.g. ``"kW"``, ``"EUR/MWh"``)."""
    try:
        return ureg.Unit(name)
    except Exception as exc:  # noqa: BLE001 - pint's parser raises many types on garbage ("1/0", "(")
        raise InputError(f"unknown unit {name!r} ({exc})", "unit") from None


def is_convertible(from_unit: str, to_unit: str) -> bool:
    """Tell whether values in ``from_unit`` can be expressed in ``to_unit``."""
    try:
        return unit(from_unit).dimensionality == unit(to_unit).dimensionality
    except InputError:
        return False


@lru_cache(maxsize=512)
def conversion_factor(from_unit: str, to_unit: str, field: str = "unit") -> float:
    """Return f such that ``value_in_to_unit = f * value_in_from_unit``.

    Only multiplicative units are supported (no offsets such as degC).
    """
    if from_unit == to_unit:
        return 1.0
    try:
        return float(Q_(1.0, unit(from_unit)).to(unit(to_unit)).magnitude)
    except pint.errors.DimensionalityError:
        raise InputError(
            f"unit {from_unit!r} cannot be converted to {to_unit!r}; "
            f"send values in a unit compatible with {to_unit!r}",
            field,
        ) from None
