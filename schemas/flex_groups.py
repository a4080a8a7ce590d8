"""Device groups and inflexible entries in a list of flex-models (FlexMeasures 1.0).

A list of flex-models may hold three kinds of entries:

- a *device* (storage or process), optionally joining a group with
  ``"group": {"sensor": ...}`` or ``"group": {"asset": ...}`` (a bare id means a
  sensor, as FlexMeasures still accepts);
- a *group entry*: an entry whose own ``sensor`` (or, without a sensor, its own
  ``asset``) another entry's ``group`` names. It limits the summed power of its
  members: ``power-capacity`` hard (both directions),
  ``consumption-capacity``/``production-capacity`` soft (capped by
  ``power-capacity``) at FlexMeasures' default breach price of 10000 currency
  per kW. A group entry may itself join a group: the inner group's members
  then count toward the outer group too. It carries no device fields (SOC,
  efficiencies), and needs at least one of the three capacities;
- an *inflexible entry*: one ``inflexible-consumption`` or
  ``inflexible-production`` (a quantity, segments or a sensor, as in the
  flex-context) for a device that is measured, not scheduled. Its power counts
  toward the site and, with a ``group``, toward that group.

Errors name the entry as written, e.g. ``flex-model[2].group``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import Field, ValidationError

from schemas.errors import InputError
from schemas.flex_model import (
    PLANNED_FLEX_MODEL_FIELDS,
    FieldValue,
    FlexModel,
    OutputSensor,
    ProcessFlexModel,
    SensorName,
    StorageFlexModel,
    _FlexBase,
    check_fields,
    input_error,
    known_fields,
    parse_flex_model,
    sensor_name,
)
from schemas.flex_problem import DeviceGroup
from schemas.flex_series import SeriesReader

#: FlexMeasures' breach price of a group's consumption or production capacity, currency per kW.
DEFAULT_GROUP_BREACH_PRICE = 10000.0

#: A group as referenced: ("sensor", name) or ("asset", id as text).
GroupKey = tuple[str, str]

_INFLEXIBLE_KEYS = ("inflexible-consumption", "inflexible-production")


class GroupFlexModel(_FlexBase):
    """A group entry: power limits on the summed power of its members."""

    sensor: SensorName | None = None
    asset: int | str | None = None
    commodity: Literal["electricity"] = "electricity"
    group: Any = None
    consumption: OutputSensor = None
    production: OutputSensor = None
    power_capacity: FieldValue = Field(default=None, alias="power-capacity")
    consumption_capacity: FieldValue = Field(default=None, alias="consumption-capacity")
    production_capacity: FieldValue = Field(default=None, alias="production-capacity")


class InflexibleFlexModel(_FlexBase):
    """An inflexible device declared in the flex-model: measured, not scheduled."""

    sensor: SensorName | None = None
    asset: int | str | None = None
    commodity: Literal["electricity"] = "electricity"
    group: Any = None
    inflexible_consumption: FieldValue = Field(default=None, alias="inflexible-consumption")
    inflexible_production: FieldValue = Field(default=None, alias="inflexible-production")
    prefer_charging_sooner: bool = Field(default=True, alias="prefer-charging-sooner")
    prefer_curtailing_later: bool = Field(default=True, alias="prefer-curtailing-later")


@dataclass
class FlexEntries:
    """A flex-model list split by kind; each entry keeps its field prefix (``flex-model[i]``)."""

    devices: list[tuple[str, FlexModel]] = field(default_factory=list)
    groups: dict[GroupKey, tuple[str, GroupFlexModel]] = field(default_factory=dict)
    inflexible: list[tuple[str, InflexibleFlexModel]] = field(default_factory=list)
    #: The group each entry joins, by the entry's field prefix.
    parent: dict[str, GroupKey] = field(default_factory=dict)


def group_label(key: GroupKey) -> str:
    """A group's name in results: its sensor's name, or ``asset <id>``."""
    kind, ident = key
    return ident if kind == "sensor" else f"asset {ident}"


def group_key(value: Any, field: str) -> GroupKey:
    """Normalise a ``group`` reference; a bare id or name means a sensor."""
    if isinstance(value, dict):
        keys = set(value) & {"sensor", "asset"}
        extra = sorted(set(value) - {"sensor", "asset"})
        if extra:
            raise InputError(
                f"a group reference has 'sensor' or 'asset' only, not {extra[0]!r}",
                f"{field}.{extra[0]}",
            )
        if len(keys) != 1:
            raise InputError(
                'reference exactly one of a sensor or an asset, e.g. {"asset": 7} or '
                '{"sensor": "inverter"}',
                field,
            )
        kind = keys.pop()
        ident = value[kind]
    else:
        kind, ident = "sensor", value
    if isinstance(ident, bool) or not isinstance(ident, int | str) or ident == "":
        raise InputError(f"give the group's {kind} as an id or a name", f"{field}.{kind}")
    return kind, str(sensor_name(ident))


def _own_keys(data: dict[str, Any]) -> tuple[GroupKey | None, GroupKey | None]:
    sensor = data.get("sensor")
    asset = data.get("asset")
    own_sensor = None
    if isinstance(sensor, int | str | dict) and not isinstance(sensor, bool):
        name = sensor_name(sensor)
        own_sensor = ("sensor", str(name)) if isinstance(name, int | str) else None
    own_asset = ("asset", str(asset)) if isinstance(asset, int | str) else None
    return own_sensor, own_asset


def _validate(cls: type[_FlexBase], data: dict[str, Any], f: str) -> Any:
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise input_error(exc, f) from None


def _group_entry(data: dict[str, Any], f: str) -> GroupFlexModel:
    known = set(known_fields(GroupFlexModel))
    device_fields = set(known_fields(StorageFlexModel)) | set(known_fields(ProcessFlexModel))
    for key in data:
        if key not in known and (key in device_fields or key in _INFLEXIBLE_KEYS):
            raise InputError(
                "a group entry only limits its members' summed power (power-capacity, "
                f"consumption-capacity, production-capacity); give {key!r} to a member device",
                f"{f}.{key}",
            )
    check_fields(data, known, PLANNED_FLEX_MODEL_FIELDS, f, device_fields)
    model = _validate(GroupFlexModel, data, f)
    caps = (model.power_capacity, model.consumption_capacity, model.production_capacity)
    if all(v is None for v in caps):
        raise InputError(
            "a group entry needs power-capacity (hard), consumption-capacity and/or "
            "production-capacity (soft); without them it limits nothing",
            f"{f}.power-capacity",
        )
    return model


def _inflexible_entry(data: dict[str, Any], f: str) -> InflexibleFlexModel:
    if all(k in data for k in _INFLEXIBLE_KEYS):
        raise InputError(
            "an inflexible device entry gives inflexible-consumption or "
            "inflexible-production, not both; use two entries",
            f"{f}.inflexible-production",
        )
    known = set(known_fields(InflexibleFlexModel))
    for key in data:
        if key not in known:
            raise InputError(
                "an inflexible device entry is measured, not scheduled, and carries no "
                f"device fields; leave out {key!r} (or schedule the device in an entry of its own)",
                f"{f}.{key}",
            )
    return _validate(InflexibleFlexModel, data, f)


def parse_flex_entries(data: Any) -> FlexEntries:
    """Split one flex-model object or a list into devices, group entries and inflexible entries."""
    if isinstance(data, dict):
        for key in ("group", *_INFLEXIBLE_KEYS):
            if key in data:
                raise InputError(
                    "groups and inflexible device entries need a list of flex-models (one "
                    "entry per device, plus one for each group)",
                    f"flex-model.{key}",
                )
        return FlexEntries(devices=[("flex-model", parse_flex_model(data))])
    if not isinstance(data, list) or not data:
        raise InputError("expected a flex-model object or a non-empty list of them", "flex-model")
    entries = FlexEntries()
    referenced: dict[GroupKey, str] = {}
    for i, d in enumerate(data):
        if isinstance(d, dict) and d.get("group") is not None:
            f = f"flex-model[{i}]"
            entries.parent[f] = key = group_key(d["group"], f"{f}.group")
            referenced.setdefault(key, f"{f}.group")
    sensors: dict[str, str] = {}
    for i, d in enumerate(data):
        f = f"flex-model[{i}]"
        if not isinstance(d, dict):
            raise InputError("expected a JSON object with a 'sensor' and the device's fields", f)
        own_sensor, own_asset = _own_keys(d)
        if own_sensor in referenced:
            entries.groups[own_sensor] = (f, _group_entry(d, f))
        elif own_asset in referenced:
            if own_sensor is not None:
                raise InputError(
                    f"this entry is group asset {own_asset[1]}, named by "
                    f"{referenced[own_asset]}, and a group named by its asset has no power "
                    "sensor of its own; leave out 'sensor' (or name the group by this sensor)",
                    f"{f}.sensor",
                )
            entries.groups[own_asset] = (f, _group_entry(d, f))
        elif any(k in d for k in _INFLEXIBLE_KEYS):
            entries.inflexible.append((f, _inflexible_entry(d, f)))
        else:
            entries.devices.append((f, parse_flex_model(d, f)))
        if own_sensor is not None:
            if own_sensor[1] in sensors:
                raise InputError(
                    f"sensor {own_sensor[1]!r} is also used by {sensors[own_sensor[1]]}; "
                    "sensor names must be unique",
                    f"{f}.sensor",
                )
            sensors[own_sensor[1]] = f
    for key, where in referenced.items():
        if key not in entries.groups:
            kind, ident = key
            raise InputError(
                f"no flex-model entry is group {kind} {ident!r}; add an entry "
                f'{{"{kind}": {json.dumps(ident)}, "power-capacity": ...}} carrying the '
                "group's power-capacity, consumption-capacity and/or production-capacity",
                where,
            )
    _check_cycles(entries)
    return entries


def _check_cycles(entries: FlexEntries) -> None:
    """Reject groups that (through their own ``group``) end up inside themselves."""
    for key, (f, _) in entries.groups.items():
        seen = [key]
        cur = entries.parent.get(f)
        while cur is not None:
            if cur in seen:
                chain = " -> ".join(group_label(k) for k in [*seen, cur])
                raise InputError(
                    f"groups contain each other in a cycle ({chain}); a group may join a "
                    "larger group, never one inside itself",
                    f"{f}.group",
                )
            seen.append(cur)
            cur = entries.parent.get(entries.groups[cur][0])


def _ancestors(entries: FlexEntries, f: str) -> list[GroupKey]:
    """The group ``f`` joins and every group that group joins in turn."""
    out: list[GroupKey] = []
    cur = entries.parent.get(f)
    while cur is not None:
        out.append(cur)
        cur = entries.parent.get(entries.groups[cur][0])
    return out


def _magnitudes(arr: np.ndarray, field: str) -> np.ndarray:
    if np.any(arr < 0):
        raise InputError("give magnitudes (not negative values)", field)
    return arr


def inflexible_power(m: InflexibleFlexModel, f: str, reader: SeriesReader) -> np.ndarray:
    """Net power of an inflexible entry, kW per step (consumption positive; missing steps 0)."""
    produces = m.inflexible_consumption is None
    key = "inflexible-production" if produces else "inflexible-consumption"
    value = m.inflexible_production if produces else m.inflexible_consumption
    power = np.nan_to_num(_magnitudes(reader.steps(value, f"{f}.{key}", "kW", 0.0), f"{f}.{key}"))
    return -power if produces else power


def resolve_groups(
    entries: FlexEntries,
    reader: SeriesReader,
    device_name: Callable[[str], str],
) -> tuple[list[DeviceGroup], np.ndarray]:
    """The groups, resolved per step, and the inflexible entries' net power (kW per step).

    ``device_name`` maps a device entry's prefix to its scheduled device's name.
    """
    n = reader.grid.n
    members: dict[GroupKey, list[str]] = {k: [] for k in entries.groups}
    fixed: dict[GroupKey, np.ndarray] = {k: np.zeros(n) for k in entries.groups}
    for f, _ in entries.devices:
        for key in _ancestors(entries, f):
            members[key].append(device_name(f))
    site = np.zeros(n)
    for f, m in entries.inflexible:
        power = inflexible_power(m, f, reader)
        site = site + power
        for key in _ancestors(entries, f):
            fixed[key] = fixed[key] + power
    groups = []
    for key, (f, m) in entries.groups.items():
        power = _magnitudes(
            reader.steps(m.power_capacity, f"{f}.power-capacity", "kW", np.nan, overlap="min"),
            f"{f}.power-capacity",
        )
        caps = {}
        for side, value in (
            ("consumption", m.consumption_capacity),
            ("production", m.production_capacity),
        ):
            name = f"{f}.{side}-capacity"
            cap = _magnitudes(reader.steps(value, name, "kW", np.nan, overlap="min"), name)
            caps[side] = np.where(np.isnan(cap), cap, np.fmin(cap, power))
        prices = {
            side: None if value is None else np.full(n, DEFAULT_GROUP_BREACH_PRICE)
            for side, value in (
                ("consumption", m.consumption_capacity),
                ("production", m.production_capacity),
            )
        }
        outputs = {"consumption": m.consumption, "production": m.production}
        groups.append(
            DeviceGroup(
                name=group_label(key),
                n=n,
                members=members[key],
                power_capacity=power,
                consumption_capacity=caps["consumption"],
                production_capacity=caps["production"],
                consumption_breach_price=prices["consumption"],
                production_breach_price=prices["production"],
                inflexible_power=fixed[key],
                outputs={k: ref for k, ref in outputs.items() if ref is not None},
            )
        )
    return groups, site
