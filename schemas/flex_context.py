"""The flex-context as FlexMeasures users write it, as a pydantic model.

Prices may be any currency per energy (``"100 EUR/MWh"``) or an emission
intensity (``"350 kg/MWh"``): the optimiser minimises whatever the price
measures, which is how SteerOnCO2 works without special code.

Defaults follow FlexMeasures 1.0: ``relax-constraints`` is true, and the
specific ``relax-soc-constraints`` and ``relax-site-capacity-constraints`` follow
it unless set; ``relax-capacity-constraints`` (device capacities) is false. The
deprecated ``consumption-price-sensor``, ``production-price-sensor`` and
``inflexible-device-sensors`` (bare sensor ids) are still accepted, with a note
saying what to write instead.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError

from schemas.errors import InputError
from schemas.flex_model import (
    FieldValue,
    OutputSensor,
    _FlexBase,
    check_fields,
    input_error,
    known_fields,
)

#: FlexMeasures 1.0 flex-context fields that FlexStream does not support yet.
PLANNED_FLEX_CONTEXT_FIELDS: frozenset[str] = frozenset()


def _sensor_list(value: Any) -> Any:
    """``[3, 4]`` or ``[{"sensor": 3}]``: every entry as a sensor reference."""
    if isinstance(value, list):
        return [
            {"sensor": v} if isinstance(v, int | str) and not isinstance(v, bool) else v
            for v in value
        ]
    return value


class FlexContext(_FlexBase):
    """Flex-context fields (FlexMeasures names as aliases)."""

    commodity: Literal["electricity"] = "electricity"
    consumption_price: FieldValue = Field(default=None, alias="consumption-price")
    production_price: FieldValue = Field(default=None, alias="production-price")
    consumption_price_sensor: int | str | None = Field(
        default=None, alias="consumption-price-sensor"
    )
    production_price_sensor: int | str | None = Field(default=None, alias="production-price-sensor")
    site_power_capacity: FieldValue = Field(default=None, alias="site-power-capacity")
    site_consumption_capacity: FieldValue = Field(default=None, alias="site-consumption-capacity")
    site_production_capacity: FieldValue = Field(default=None, alias="site-production-capacity")
    commitments: list[Any] = Field(default_factory=list)
    #: Other commodities' contexts (``schemas.commodities``); split off before parsing.
    commodities: list[Any] = Field(default_factory=list)
    site_peak_consumption: FieldValue = Field(default=None, alias="site-peak-consumption")
    site_peak_consumption_price: FieldValue = Field(
        default=None, alias="site-peak-consumption-price"
    )
    site_peak_production: FieldValue = Field(default=None, alias="site-peak-production")
    site_peak_production_price: FieldValue = Field(default=None, alias="site-peak-production-price")
    inflexible_consumption: FieldValue = Field(default=None, alias="inflexible-consumption")
    inflexible_production: FieldValue = Field(default=None, alias="inflexible-production")
    inflexible_device_sensors: Annotated[list[Any], BeforeValidator(_sensor_list)] = Field(
        default_factory=list, alias="inflexible-device-sensors"
    )
    site_consumption_breach_price: FieldValue = Field(
        default=None, alias="site-consumption-breach-price"
    )
    site_production_breach_price: FieldValue = Field(
        default=None, alias="site-production-breach-price"
    )
    consumption_breach_price: FieldValue = Field(default=None, alias="consumption-breach-price")
    production_breach_price: FieldValue = Field(default=None, alias="production-breach-price")
    soc_minima_breach_price: FieldValue = Field(default=None, alias="soc-minima-breach-price")
    soc_maxima_breach_price: FieldValue = Field(default=None, alias="soc-maxima-breach-price")
    relax_constraints: bool = Field(default=True, alias="relax-constraints")
    relax_soc_constraints: bool | None = Field(default=None, alias="relax-soc-constraints")
    relax_capacity_constraints: bool = Field(default=False, alias="relax-capacity-constraints")
    relax_site_capacity_constraints: bool | None = Field(
        default=None, alias="relax-site-capacity-constraints"
    )
    aggregate_consumption: OutputSensor = Field(default=None, alias="aggregate-consumption")
    aggregate_production: OutputSensor = Field(default=None, alias="aggregate-production")
    aggregate_power: OutputSensor = Field(default=None, alias="aggregate-power")

    @property
    def relax_soc(self) -> bool:
        """Whether SOC minima, maxima and targets get default breach prices."""
        if self.relax_soc_constraints is None:
            return self.relax_constraints
        return self.relax_soc_constraints

    @property
    def relax_site_capacity(self) -> bool:
        """Whether the site consumption and production capacities get default breach prices."""
        if self.relax_site_capacity_constraints is None:
            return self.relax_constraints
        return self.relax_site_capacity_constraints


#: Fields that mean the user has moved past the deprecated price sensor fields.
_RELAXATION_FIELDS = (
    "soc-minima-breach-price",
    "soc-maxima-breach-price",
    "site-consumption-breach-price",
    "site-production-breach-price",
    "consumption-breach-price",
    "production-breach-price",
    "relax-constraints",
    "relax-soc-constraints",
    "relax-capacity-constraints",
    "relax-site-capacity-constraints",
)


def parse_flex_context(data: Any) -> FlexContext:
    """Validate a flex-context object."""
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with at least 'consumption-price'", "flex-context")
    check_fields(data, known_fields(FlexContext), PLANNED_FLEX_CONTEXT_FIELDS, "flex-context")
    try:
        ctx = FlexContext.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc, "flex-context") from None
    for old, new in (
        ("consumption-price-sensor", "consumption-price"),
        ("production-price-sensor", "production-price"),
    ):
        if old in data and new in data:
            raise InputError(
                f"give either {new} or the deprecated {old}, not both", f"flex-context.{old}"
            )
        if old in data:
            used = [f for f in _RELAXATION_FIELDS if f in data]
            if used:
                raise InputError(
                    f"{used[0]} needs the current price fields: write "
                    f'"{new}": {{"sensor": {data[old]!r}}} instead of {old}',
                    f"flex-context.{old}",
                )
    if "inflexible-device-sensors" in data and (
        "inflexible-consumption" in data or "inflexible-production" in data
    ):
        raise InputError(
            "give either inflexible-device-sensors (deprecated) or "
            "inflexible-consumption/inflexible-production, not both",
            "flex-context.inflexible-device-sensors",
        )
    if ctx.consumption_price is None and ctx.consumption_price_sensor is None:
        raise InputError(
            "this field is required: give a price such as '100 EUR/MWh', a list of "
            'segments or a sensor such as {"sensor": 5}',
            "flex-context.consumption-price",
        )
    return ctx


def deprecation_notes(data: dict[str, Any]) -> list[str]:
    """Notes for deprecated flex-context fields the user wrote, saying what to write instead."""
    notes = []
    for old, new in (
        ("consumption-price-sensor", "consumption-price"),
        ("production-price-sensor", "production-price"),
    ):
        if old in data:
            notes.append(
                f"flex-context.{old} is deprecated (FlexMeasures 0.23); write "
                f'"{new}": {{"sensor": {data[old]!r}}} instead. Default breach prices are not '
                "filled in with it, as in FlexMeasures."
            )
    if "inflexible-device-sensors" in data:
        notes.append(
            "flex-context.inflexible-device-sensors is deprecated (FlexMeasures 1.0); write "
            'inflexible-consumption and/or inflexible-production as [{"sensor": ...}] '
            "instead, which state the sign convention"
        )
    if "aggregate-power" in data:
        notes.append(
            "flex-context.aggregate-power is deprecated (FlexMeasures 1.0); write "
            "aggregate-consumption or aggregate-production instead"
        )
    return notes
