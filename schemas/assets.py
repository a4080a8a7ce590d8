"""Assets: a site or device group with its flex-model and flex-context, as in FlexMeasures.

An asset may have a parent whose flex-context it inherits: the parent's fields
apply unless the asset sets them itself (grandparents likewise). Parents must
not form a loop (an asset its own parent or ancestor): registration refuses
one, and resolving the flex-context of an asset in a loop raises instead of
walking it forever.

Flex-model and flex-context use FlexMeasures' field names; values may be
quantities, segment lists or sensor references (``{"sensor": "name"}``), which
the streaming layer resolves from the belief state when it schedules.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.errors import InputError
from schemas.times import parse_duration


class ReplanPolicy(BaseModel):
    """When and how the asset is re-planned automatically."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    on_new_prices: bool = Field(
        default=False,
        alias="on-new-prices",
        description="Re-plan when new beliefs arrive for a price sensor of the flex-context.",
    )
    duration: timedelta = Field(
        default=timedelta(hours=48), description="Horizon of automatic schedules (ISO 8601)."
    )
    resolution: timedelta = Field(
        default=timedelta(minutes=15), description="Step of automatic schedules (ISO 8601)."
    )
    debounce: timedelta = Field(
        default=timedelta(seconds=1),
        description="Quiet time after the last price belief before re-planning (a burst of "
        "prices gives one re-plan).",
    )

    @field_validator("duration", "resolution", "debounce", mode="before")
    @classmethod
    def _durations(cls, v: Any, info: Any) -> timedelta:
        d = parse_duration(v, info.field_name)
        if d <= timedelta(0) and info.field_name != "debounce":
            raise ValueError("must be positive")
        return d


class Asset(BaseModel):
    """An asset with its flex-model (one object or one per device) and flex-context."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(min_length=1)
    parent: str | None = Field(default=None, description="Name of the parent asset.")
    flex_model: list[dict[str, Any]] = Field(default_factory=list, alias="flex-model")
    flex_context: dict[str, Any] = Field(default_factory=dict, alias="flex-context")
    replan: ReplanPolicy = Field(default_factory=ReplanPolicy)
    description: str = ""

    @field_validator("flex_model", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return [v]
        return v

    @field_validator("flex_model")
    @classmethod
    def _devices_named(cls, v: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, m in enumerate(v):
            if not isinstance(m.get("sensor"), str) or not m["sensor"]:
                raise ValueError(
                    f"device {i} has no 'sensor': name the power sensor its schedule is for"
                )
        return v

    @property
    def devices(self) -> list[str]:
        """The device (power) sensors of the flex-model, in order."""
        return [m["sensor"] for m in self.flex_model]


def parent_cycle(name: str, assets: Mapping[str, Asset]) -> list[str] | None:
    """The loop of parents reached from asset ``name``, e.g. ``["a", "b", "a"]``; None if none.

    Walks up the parents until an asset without one (or an unregistered one), so
    it ends after at most ``len(assets)`` steps even on a registry with a loop.
    """
    path: list[str] = []
    seen: dict[str, int] = {}
    current: str | None = name
    while current is not None and current not in seen:
        seen[current] = len(path)
        path.append(current)
        asset = assets.get(current)
        current = asset.parent if asset is not None else None
    if current is None:
        return None
    return [*path[seen[current] :], current]


def _loop_error(name: str, cycle: list[str]) -> InputError:
    loop = " -> ".join(cycle)
    if name in cycle:
        message = f"asset {name!r} is its own ancestor ({loop})"
    else:
        message = f"the parents of asset {name!r} lead into a loop ({loop})"
    return InputError(f"{message}; give one of these assets another parent, or none", "parent")


def check_parent(name: str, assets: Mapping[str, Asset]) -> None:
    """Refuse asset ``name`` when its parents lead back to an asset already on the way."""
    cycle = parent_cycle(name, assets)
    if cycle is not None:
        raise _loop_error(name, cycle)


def effective_flex_context(name: str, assets: Mapping[str, Asset]) -> dict[str, Any]:
    """The asset's flex-context with the fields it inherits from its ancestors.

    A loop of parents (which registration refuses, but an older registry may hold)
    raises :class:`InputError` naming ``parent`` and the loop.
    """
    chain: list[Asset] = []
    path: list[str] = []
    current: str | None = name
    while current is not None:
        if current in path:
            raise _loop_error(name, [*path[path.index(current) :], current])
        path.append(current)
        asset = assets.get(current)
        if asset is None:
            where = "asset" if current == name else "parent"
            raise InputError(f"asset {current!r} is not registered; add it first", where)
        chain.append(asset)
        current = asset.parent
    merged: dict[str, Any] = {}
    for asset in reversed(chain):
        inherited = merged.get("commodities")
        merged.update(asset.flex_context)
        own = asset.flex_context.get("commodities")
        if isinstance(inherited, list) and isinstance(own, list):
            merged["commodities"] = _merge_commodities(inherited, own)
    return merged


def _merge_commodities(inherited: list[Any], own: list[Any]) -> list[Any]:
    """Inherited commodity contexts with an asset's own, field by field per commodity.

    An entry of the asset's ``commodities`` for a commodity its ancestors also
    give overrides their fields one by one (a child sets a heat price and keeps
    the site's heat capacity); other entries are added. Entries without a
    ``commodity`` name are kept as written, for the parser to name.
    """
    out = [dict(e) if isinstance(e, dict) else e for e in inherited]
    where = {
        e.get("commodity"): i for i, e in enumerate(out) if isinstance(e, dict) and "commodity" in e
    }
    for entry in own:
        key = entry.get("commodity") if isinstance(entry, dict) else None
        if key is not None and key in where:
            out[where[key]] = {**out[where[key]], **entry}
        else:
            out.append(entry)
    return out


def site_of(name: str, assets: Mapping[str, Asset]) -> str:
    """The site of asset ``name``: the top of its parents (itself without a parent).

    An unregistered asset is its own site; so is the top of a chain whose
    parent is not registered. A loop of parents (registration refuses them,
    an older registry may hold one) makes the loop's first name in sort order
    the site, the same for every asset on it.
    """
    seen: list[str] = []
    current = name
    while True:
        asset = assets.get(current)
        if asset is None or asset.parent is None or asset.parent not in assets:
            return current
        if current in seen:
            return min(seen[seen.index(current) :])
        seen.append(current)
        current = asset.parent


def sensor_refs(value: Any) -> set[str]:
    """Names of all sensors referenced (``{"sensor": name}``) anywhere in ``value``."""
    out: set[str] = set()
    if isinstance(value, dict):
        if isinstance(value.get("sensor"), str) and len(value) <= 2:
            out.add(value["sensor"])
        for v in value.values():
            if isinstance(v, dict | list):
                out |= sensor_refs(v)
    elif isinstance(value, list):
        for v in value:
            out |= sensor_refs(v)
    return out


PRICE_FIELDS = ("consumption-price", "production-price")


def price_sensors(flex_context: Mapping[str, Any]) -> set[str]:
    """Sensors whose new beliefs should re-plan an asset (its price fields' sensors)."""
    out: set[str] = set()
    for f in PRICE_FIELDS:
        out |= sensor_refs(flex_context.get(f))
    return out
