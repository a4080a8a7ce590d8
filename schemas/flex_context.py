"""The flex-context as FlexMeasures users write it, as a pydantic model.

Prices may be any currency per energy (``"100 EUR/MWh"``) or an emission
intensity (``"350 kg/MWh"``): the optimiser minimises whatever the price
measures, which is how SteerOnCO2 works without special code.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError

from schemas.errors import InputError
from schemas.flex_model import FieldValue, _FlexBase, input_error


class FlexContext(_FlexBase):
    """Flex-context fields (FlexMeasures names as aliases)."""

    consumption_price: FieldValue = Field(alias="consumption-price")
    production_price: FieldValue = Field(default=None, alias="production-price")
    site_power_capacity: FieldValue = Field(default=None, alias="site-power-capacity")
    site_consumption_capacity: FieldValue = Field(default=None, alias="site-consumption-capacity")
    site_production_capacity: FieldValue = Field(default=None, alias="site-production-capacity")
    inflexible_consumption: FieldValue = Field(default=None, alias="inflexible-consumption")
    inflexible_production: FieldValue = Field(default=None, alias="inflexible-production")
    inflexible_device_sensors: list[Any] = Field(
        default_factory=list, alias="inflexible-device-sensors"
    )
    site_consumption_breach_price: FieldValue = Field(
        default=None, alias="site-consumption-breach-price"
    )
    site_production_breach_price: FieldValue = Field(
        default=None, alias="site-production-breach-price"
    )
    soc_minima_breach_price: FieldValue = Field(default=None, alias="soc-minima-breach-price")
    soc_maxima_breach_price: FieldValue = Field(default=None, alias="soc-maxima-breach-price")
    relax_constraints: bool = Field(default=False, alias="relax-constraints")


def parse_flex_context(data: Any) -> FlexContext:
    """Validate a flex-context object."""
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with at least 'consumption-price'", "flex-context")
    try:
        return FlexContext.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc, "flex-context") from None
