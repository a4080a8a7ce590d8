"""Flex-models as FlexMeasures users write them (hyphenated names), as pydantic models.

Two kinds: a storage flex-model (battery, EV with V2G, heat buffer) and a
process flex-model (FlexMeasures' ProcessScheduler). The models check the shape
(known field names, booleans, enum values); quantities and series are resolved
onto the time grid by ``schemas.flex_request``, which knows the window and the
units. Errors name the field as the user wrote it (``soc-max``), prefixed with
the device's position when several are given (``flex-model[1].soc-max``).

Field names follow FlexMeasures 1.0. A FlexMeasures field that FlexStream does
not support yet is rejected with a message saying so; any other unknown field
gets the nearest known name as a spelling hint. Sensors may be named by id
(``15``) or by name (``"bat"``), bare or as ``{"sensor": ...}``; ids become
their decimal text (``"15"``) inside FlexStream.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from schemas.errors import InputError

#: A quantity ("2 MW"), a number, a list of segments or points, or a sensor reference.
FieldValue = str | float | int | list[Any] | dict[str, Any] | None


def sensor_name(value: Any) -> Any:
    """Normalise a sensor given by id or name, bare or as ``{"sensor": ...}``, to text."""
    if isinstance(value, dict) and "sensor" in value:
        value = value["sensor"]
    if isinstance(value, bool):
        return value  # pydantic rejects it as not a string
    if isinstance(value, int):
        return str(value)
    return value


#: A sensor named by id or name; stored as text.
SensorName = Annotated[str, BeforeValidator(sensor_name), Field(min_length=1)]


def _sensor_ref(value: Any) -> Any:
    """An output sensor written as an id, a name or ``{"sensor": ...}``: keep it as a reference."""
    if isinstance(value, dict):
        return value
    if isinstance(value, int | str) and not isinstance(value, bool):
        return {"sensor": value}
    return value


#: An output sensor reference such as ``{"sensor": 14}``.
OutputSensor = Annotated[dict[str, Any] | None, BeforeValidator(_sensor_ref)]


class _FlexBase(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)


#: FlexMeasures 1.0 flex-model fields that FlexStream does not support yet.
PLANNED_FLEX_MODEL_FIELDS: frozenset[str] = frozenset()


class StorageFlexModel(_FlexBase):
    """Storage flex-model fields (FlexMeasures names as aliases)."""

    sensor: SensorName
    asset: int | str | None = None
    commodity: str = Field(default="electricity", min_length=1)
    coupling: str | None = Field(default=None, min_length=1)
    coupling_coefficient: FieldValue = Field(default=None, alias="coupling-coefficient")
    consumption: OutputSensor = None
    production: OutputSensor = None
    state_of_charge: FieldValue = Field(default=None, alias="state-of-charge")
    soc_at_start: FieldValue = Field(default=None, alias="soc-at-start")
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
    prefer_curtailing_later: bool = Field(default=True, alias="prefer-curtailing-later")
    #: S2 operation modes (power bands), resolved by ``schemas.operation_modes``.
    operation_modes: Any = Field(default=None, alias="operation-modes")
    #: The group this device joins (``schemas.flex_groups``).
    group: Any = None


class ProcessFlexModel(_FlexBase):
    """Process flex-model fields (FlexMeasures' ProcessScheduler)."""

    sensor: SensorName
    asset: int | str | None = None
    power: FieldValue
    duration: str
    process_type: Literal["INFLEXIBLE", "BREAKABLE", "SHIFTABLE"] = Field(
        default="INFLEXIBLE", alias="process-type"
    )
    time_restrictions: list[dict[str, Any]] = Field(default_factory=list, alias="time-restrictions")
    optimization_sense: Literal["MIN", "MAX"] = Field(default="MIN", alias="optimization-sense")
    #: The group this process joins (``schemas.flex_groups``).
    group: Any = None


FlexModel = StorageFlexModel | ProcessFlexModel

_PROCESS_KEYS = {"duration", "process-type", "time-restrictions", "optimization-sense"}


def known_fields(cls: type[BaseModel]) -> list[str]:
    """The field names a user writes for ``cls`` (its aliases)."""
    return [f.alias or name for name, f in cls.model_fields.items()]


def check_fields(
    data: dict[str, Any],
    known: Iterable[str],
    planned: Iterable[str],
    prefix: str,
    also: Iterable[str] = (),
) -> None:
    """Reject unknown fields: planned FlexMeasures fields say so, typos get the nearest name.

    ``also`` lists names that are known elsewhere (e.g. the other device kind's
    fields), used only for the spelling hint.
    """
    known = set(known)
    planned = set(planned)
    for key in data:
        if key in known:
            continue
        field = f"{prefix}.{key}" if prefix else str(key)
        if key in planned:
            raise InputError(
                f"`{field}` is a FlexMeasures field FlexStream does not support yet; "
                "leave it out (see solvers/README.md for the supported fields)",
                field,
            )
        if key in set(also):
            raise InputError(
                "not a field of this kind of entry (storage, process or group), though it is "
                "one of another kind; leave it out, or check which kind the entry is meant to be",
                field,
            )
        near = difflib.get_close_matches(str(key), sorted(known | set(also)), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]!r}?" if near else "check its spelling"
        raise InputError(
            f"unknown field; {hint} (FlexMeasures field names are hyphenated, e.g. 'soc-max')",
            field,
        )


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
    elif loc == "commodity" and prefix == "flex-context":
        msg = (
            "the top of the flex-context is the electricity context; give other commodities "
            'their own entry in its commodities list, e.g. [{"commodity": "gas", ...}]'
        )
    elif loc == "commodity" and err["type"] == "literal_error":
        msg = (
            "only 'electricity' is supported for this kind of entry so far; devices of other "
            "commodities are storage or process entries"
        )
    return InputError(msg, field)


def parse_flex_model(data: Any, field: str = "flex-model") -> FlexModel:
    """Validate one flex-model object, telling a process from a storage device."""
    if not isinstance(data, dict):
        raise InputError("expected a JSON object with a 'sensor' and the device's fields", field)
    is_process = bool(_PROCESS_KEYS & data.keys()) or (
        "power" in data and "soc-at-start" not in data
    )
    cls = ProcessFlexModel if is_process else StorageFlexModel
    other = StorageFlexModel if is_process else ProcessFlexModel
    check_fields(data, known_fields(cls), PLANNED_FLEX_MODEL_FIELDS, field, known_fields(other))
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
