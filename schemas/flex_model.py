"""Flex-models as FlexMeasures users write them (hyphenated names), as pydantic models.

Two kinds: a storage flex-model (battery, EV with V2G, heat buffer) and a
process flex-model (FlexMeasures' ProcessScheduler). The models check the shape
(known field names, booleans, enum values); quantities and series are resolved
onto the time grid by ``schemas.flex_request``, which knows the window and the
units. Errors name the field as the user wrote it (``soc-max``), prefixed with
the device's position when several are given (``flex-model[1].soc-max``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.errors import InputError

#: A quantity ("2 MW"), a number, a list of segments or points, or a sensor reference.
FieldValue = str | float | int | list[Any] | dict[str, Any] | None


class _FlexBase(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


class StorageFlexModel(_FlexBase):
    """Storage flex-model fields (FlexMeasures names as aliases)."""

    sensor: str = Field(min_length=1)
    soc_at_start: FieldValue = Field(alias="soc-at-start")
    soc_unit: Literal["kWh", "MWh"] | None = Field(default=None, alias="soc-unit")
    soc_min: FieldValue = Field(default=None, alias="soc-min")
    soc_max: FieldValue = Field(default=None, alias="soc-max")
    soc_minima: FieldValue = Field(default=None, alias="soc-minima")
    soc_maxima: FieldValue = Field(default=None, alias="soc-maxima")
    soc_targets: FieldValue = Field(default=None, alias="soc-targets")
    charging_efficiency: FieldValue = Field(default=None, alias="charging-efficiency")
    discharging_efficiency: FieldValue = Field(default=None, alias="discharging-efficiency")
    roundtrip_efficiency: FieldValue = Field(default=None, alias="roundtrip-efficiency")
    storage_efficiency: FieldValue = Field(default=None, alias="storage-efficiency")
    power_capacity: FieldValue = Field(default=None, alias="power-capacity")
    consumption_capacity: FieldValue = Field(default=None, alias="consumption-capacity")
    production_capacity: FieldValue = Field(default=None, alias="production-capacity")
    soc_usage: FieldValue = Field(default=None, alias="soc-usage")
    soc_gain: FieldValue = Field(default=None, alias="soc-gain")
    prefer_charging_sooner: bool = Field(default=True, alias="prefer-charging-sooner")


class ProcessFlexModel(_FlexBase):
    """Process flex-model fields (FlexMeasures' ProcessScheduler)."""

    sensor: str = Field(min_length=1)
    power: FieldValue
    duration: str
    process_type: Literal["INFLEXIBLE", "BREAKABLE", "SHIFTABLE"] = Field(
        default="SHIFTABLE", alias="process-type"
    )
    time_restrictions: list[dict[str, Any]] = Field(default_factory=list, alias="time-restrictions")
    optimization_sense: Literal["MIN", "MAX"] = Field(default="MIN", alias="optimization-sense")


FlexModel = StorageFlexModel | ProcessFlexModel

_PROCESS_KEYS = {"duration", "process-type", "time-restrictions", "optimization-sense"}


def input_error(exc: ValidationError, prefix: str = "") -> InputError:
    """Turn pydantic's first error into an ``InputError`` naming the user's field."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or None)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown field; check its spelling against the FlexMeasures field names"
    elif err["type"] == "missing":
        msg = "this field is required"
    return InputError(msg, field)


def parse_flex_model(data: Any, field: str = "flex-model") -> FlexModel:
    """Validate one flex-model object, telling a process from a storage device."""
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with a 'sensor' and the device's fields", field)
    is_process = bool(_PROCESS_KEYS & data.keys()) or (
        "power" in data and "soc-at-start" not in data
    )
    cls = ProcessFlexModel if is_process else StorageFlexModel
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc, field) from None


def parse_flex_models(data: Any) -> list[FlexModel]:
    """Validate one flex-model object or a list of them (one per device)."""
    if isinstance(data, dict):
        return [parse_flex_model(data)]
    if isinstance(data, list) and data:
        models = [parse_flex_model(d, f"flex-model[{i}]") for i, d in enumerate(data)]
        names = [m.sensor for m in models]
        dup = {s for s in names if names.count(s) > 1}
        if dup:
            raise InputError(f"sensor names must be unique, {sorted(dup)} repeat", "flex-model")
        return models
    raise InputError("expected a flex-model object or a non-empty list of them", "flex-model")
