"""Several commodities on one site: commodity contexts and couplings, as FlexMeasures 1.0 has them.

A device's flex-model names its ``commodity`` (default ``"electricity"``). The
flex-context's ``commodities`` list holds one context per commodity (its
``commodity``, prices, site capacities, inflexible consumption and production);
the flex-context may also be that list itself, as FlexMeasures' API accepts.
The top-level fields are the electricity context; an ``electricity`` entry in the
list may stand in for them (giving both is an error naming the field).

Smart defaults of a non-electricity context (FlexMeasures'
``CommodityFlexContextSchema``), from which of the five grid-connection fields
(``consumption-price``, ``production-price``, ``site-consumption-capacity``,
``site-production-capacity``, ``site-power-capacity``) are given:

- none (``{"commodity": "heat"}``, or a commodity no context names): an internal
  node, whose devices must balance each other in every step;
- only ``site-power-capacity``: a hard connection of that size both ways, prices 0;
- otherwise per direction: a price without a capacity is an unlimited
  connection; a capacity without a price has price 0; neither is no connection
  (a zero capacity, soft at ``DEFAULT_CAPACITY_BREACH_PRICE`` per kW unless
  ``relax-constraints`` or ``relax-site-capacity-constraints`` is false).

An internal node's balance gives way at the same default price (listed as the
breach ``<commodity> balance``), unless relaxation is turned off for it.

A ``coupling`` names a converter: its flex-model entries (one per commodity port)
move together, each port's power being its ``coupling-coefficient`` times the
group's common flow level. A port's direction follows its capacities, as in
FlexMeasures: a port that may only produce (``production-capacity`` alone, or
``consumption-capacity`` of 0) is an output, any other an input. FlexStream also
takes a time-varying coefficient (a list of segments or a sensor, e.g. a heat
pump's COP following the outdoor temperature); FlexMeasures takes one number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field, ValidationError

from schemas.errors import InputError
from schemas.flex_model import (
    FieldValue,
    OutputSensor,
    StorageFlexModel,
    _FlexBase,
    check_fields,
    input_error,
    known_fields,
)
from schemas.flex_problem import StorageDevice, _vec, broadcast
from schemas.flex_series import SeriesReader, price_per_power

ELECTRICITY = "electricity"
#: Default price of breaching a defaulted zero capacity or a node's balance, currency per kW.
DEFAULT_CAPACITY_BREACH_PRICE = 10000.0
#: The grid-connection fields whose presence decides a commodity context's defaults.
GRID_FIELDS = (
    "consumption-price",
    "production-price",
    "site-consumption-capacity",
    "site-production-capacity",
    "site-power-capacity",
)


class CommodityContext(_FlexBase):
    """A commodity context: an entry of the flex-context's ``commodities`` list."""

    commodity: str = Field(default=ELECTRICITY, min_length=1)
    consumption_price: FieldValue = Field(default=None, alias="consumption-price")
    production_price: FieldValue = Field(default=None, alias="production-price")
    site_power_capacity: FieldValue = Field(default=None, alias="site-power-capacity")
    site_consumption_capacity: FieldValue = Field(default=None, alias="site-consumption-capacity")
    site_production_capacity: FieldValue = Field(default=None, alias="site-production-capacity")
    site_consumption_breach_price: FieldValue = Field(
        default=None, alias="site-consumption-breach-price"
    )
    site_production_breach_price: FieldValue = Field(
        default=None, alias="site-production-breach-price"
    )
    inflexible_consumption: FieldValue = Field(default=None, alias="inflexible-consumption")
    inflexible_production: FieldValue = Field(default=None, alias="inflexible-production")
    relax_constraints: bool = Field(default=True, alias="relax-constraints")
    relax_site_capacity_constraints: bool | None = Field(
        default=None, alias="relax-site-capacity-constraints"
    )
    aggregate_consumption: OutputSensor = Field(default=None, alias="aggregate-consumption")
    aggregate_production: OutputSensor = Field(default=None, alias="aggregate-production")

    @property
    def relax_site_capacity(self) -> bool:
        """Whether defaulted zero capacities and a node's balance may give way at a price."""
        if self.relax_site_capacity_constraints is None:
            return self.relax_constraints
        return self.relax_site_capacity_constraints


#: Flex-context fields FlexStream takes in the electricity context only, so far.
ELECTRICITY_ONLY_FIELDS = frozenset(
    {
        "commitments",
        "site-peak-consumption",
        "site-peak-consumption-price",
        "site-peak-production",
        "site-peak-production-price",
        "soc-minima-breach-price",
        "soc-maxima-breach-price",
        "consumption-breach-price",
        "production-breach-price",
        "relax-soc-constraints",
        "relax-capacity-constraints",
        "inflexible-device-sensors",
    }
)


@dataclass
class CommodityGrid:
    """A commodity's connection, resolved per step (kW, currency per kWh; ``nan``: no limit).

    ``breach_price`` (currency per kW per step) makes the directional capacities
    and an internal node's balance soft; ``None`` keeps them hard.
    ``internal_node``: no connection at all, the devices balance each other.
    """

    commodity: str
    n: int
    consumption_price: np.ndarray | float = 0.0
    production_price: np.ndarray | float | None = None
    site_power_capacity: np.ndarray | float = np.nan
    site_consumption_capacity: np.ndarray | float = np.nan
    site_production_capacity: np.ndarray | float = np.nan
    consumption_breach_price: np.ndarray | None = None
    production_breach_price: np.ndarray | None = None
    inflexible_power: np.ndarray | float = 0.0
    internal_node: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Broadcast scalars; the production price defaults to the consumption price."""
        n = self.n
        self.consumption_price = _vec(self.consumption_price, n)
        if self.production_price is None:
            self.production_price = self.consumption_price.copy()
        self.production_price = _vec(self.production_price, n)
        steps = ("site_power_capacity", "site_consumption_capacity", "site_production_capacity")
        optional = ("consumption_breach_price", "production_breach_price")
        broadcast(self, n, (*steps, "inflexible_power"), optional)


@dataclass
class Coupling:
    """A converter: its ports' powers are ``coefficient[t]`` times one flow level per step.

    ``devices`` are device names; ``coefficients`` signed per step (positive for
    an input port, which consumes; negative for an output port, which produces).
    """

    name: str
    devices: list[str]
    coefficients: list[np.ndarray]


@dataclass
class SplitContext:
    """A flex-context split by commodity.

    ``electricity``: the top-level context, with an ``electricity`` entry's fields
    moved in (``moved`` maps each such field to the entry's field prefix);
    ``others``: each other commodity's context with its field prefix.
    """

    electricity: Any
    others: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    moved: dict[str, str] = field(default_factory=dict)

    def renamed(self, exc: InputError) -> InputError:
        """``exc`` naming the field where the user wrote it (in the electricity entry, if moved)."""
        name = exc.field or ""
        bare = name.removeprefix("flex-context.")
        key = bare.split(".")[0].split("[")[0]
        if key not in self.moved:
            return exc
        message = str(exc).removeprefix(f"{name}: ")
        return InputError(message, f"{self.moved[key]}.{bare}")


def split_flex_context(data: Any) -> SplitContext:
    """The electricity context and the other commodity contexts, with their field names.

    A list is FlexMeasures' multi-commodity form (``{"commodities": [...]}``). An
    ``electricity`` entry of the list becomes the top-level context.
    """
    prefix = "flex-context"
    if isinstance(data, list):
        data = {"commodities": data}
    if not isinstance(data, dict) or "commodities" not in data:
        return SplitContext(data)
    entries = data["commodities"]
    if not isinstance(entries, list):
        raise InputError(
            'give a list with one object per commodity, e.g. [{"commodity": "gas", '
            '"consumption-price": "30 EUR/MWh"}]',
            f"{prefix}.commodities",
        )
    top = {k: v for k, v in data.items() if k != "commodities"}
    split = SplitContext(top)
    seen: dict[str, int] = {}
    for i, entry in enumerate(entries):
        f = f"{prefix}.commodities[{i}]"
        if not isinstance(entry, dict):
            raise InputError('expected an object such as {"commodity": "gas", ...}', f)
        commodity = entry.get("commodity", ELECTRICITY)
        if not isinstance(commodity, str) or not commodity:
            raise InputError("give the commodity's name, e.g. 'gas' or 'heat'", f"{f}.commodity")
        if commodity in seen:
            raise InputError(
                f"each commodity may be listed once; {commodity!r} is also "
                f"commodities[{seen[commodity]}]",
                f"{f}.commodity",
            )
        seen[commodity] = i
        if commodity == ELECTRICITY:
            both = sorted((set(entry) - {"commodity"}) & set(top))
            if both:
                raise InputError(
                    "give the electricity fields either at the top of the flex-context or in "
                    "its electricity entry of commodities, not both",
                    f"{f}.{both[0]}",
                )
            for k, v in entry.items():
                if k != "commodity":
                    top[k] = v
                    split.moved[k] = f
        else:
            split.others.append((f, entry))
    return split


def parse_commodity_context(entry: dict[str, Any], field_prefix: str) -> CommodityContext:
    """Validate one non-electricity commodity context, naming the field as written."""
    for key in entry:
        if key in ELECTRICITY_ONLY_FIELDS:
            raise InputError(
                "FlexStream takes this field in the electricity context only so far; leave it "
                "out of other commodities' contexts",
                f"{field_prefix}.{key}",
            )
    check_fields(entry, known_fields(CommodityContext), (), field_prefix)
    try:
        return CommodityContext.model_validate(entry)
    except ValidationError as exc:
        raise input_error(exc, field_prefix) from None


def resolve_commodity(
    ctx: CommodityContext,
    given: set[str],
    reader: SeriesReader,
    currency: str,
    prefix: str,
) -> CommodityGrid:
    """A commodity context on the time grid, with FlexMeasures' smart defaults (see the module)."""
    n = reader.grid.n
    price_unit = f"{currency}/kWh"

    def series(value: Any, name: str, unit: str, default: float = np.nan, **kw: Any) -> np.ndarray:
        arr = reader.steps(value, f"{prefix}.{name}", unit, default, **kw)
        if unit == "kW" and np.any(arr < 0):
            raise InputError("give magnitudes (not negative values)", f"{prefix}.{name}")
        return arr

    cp = series(ctx.consumption_price, "consumption-price", price_unit, 0.0)
    pp = series(ctx.production_price, "production-price", price_unit)
    spc = series(ctx.site_power_capacity, "site-power-capacity", "kW", overlap="min")
    scc = series(ctx.site_consumption_capacity, "site-consumption-capacity", "kW", overlap="min")
    spr = series(ctx.site_production_capacity, "site-production-capacity", "kW", overlap="min")
    relax = ctx.relax_site_capacity
    default_breach = np.full(n, DEFAULT_CAPACITY_BREACH_PRICE) if relax else None
    breach = {}
    for side, value in (
        ("consumption", ctx.site_consumption_breach_price),
        ("production", ctx.site_production_breach_price),
    ):
        name = f"site-{side}-breach-price"
        if value is None:
            breach[side] = None
            continue
        # Per power, or per energy (charged times the step length), as the site's.
        arr = price_per_power(value, f"{prefix}.{name}", reader, currency)
        if np.any(np.isnan(arr)) or np.any(arr < 0):
            raise InputError("give a non-negative price for every step", f"{prefix}.{name}")
        breach[side] = arr
    if given == {"site-power-capacity"}:
        scc, spr = spc.copy(), spc.copy()
    else:
        for side, cap in (("consumption", scc), ("production", spr)):
            if f"{side}-price" not in given and f"site-{side}-capacity" not in given:
                cap[:] = 0.0  # no connection that way (an internal node: neither way)
                if breach[side] is None:
                    breach[side] = default_breach
    inflex = series(ctx.inflexible_consumption, "inflexible-consumption", "kW", 0.0)
    inflex = inflex - series(ctx.inflexible_production, "inflexible-production", "kW", 0.0)
    outputs = {
        key: ref
        for key, ref in (
            ("aggregate-consumption", ctx.aggregate_consumption),
            ("aggregate-production", ctx.aggregate_production),
        )
        if ref is not None
    }
    return CommodityGrid(
        commodity=ctx.commodity,
        n=n,
        consumption_price=cp,
        production_price=np.where(np.isnan(pp), cp, pp),
        site_power_capacity=spc,
        site_consumption_capacity=np.fmin(scc, spc),
        site_production_capacity=np.fmin(spr, spc),
        consumption_breach_price=breach["consumption"],
        production_breach_price=breach["production"],
        inflexible_power=np.nan_to_num(inflex),
        internal_node=not given,
        outputs=outputs,
    )


def resolve_commodities(
    entries: list[tuple[str, dict[str, Any]]],
    device_commodities: list[str],
    reader: SeriesReader,
    currency: str,
) -> list[CommodityGrid]:
    """Every non-electricity commodity of the request: the contexts given, then internal nodes.

    A commodity the devices use without a context is an internal node, as in FlexMeasures.
    """
    out = []
    for prefix, entry in entries:
        ctx = parse_commodity_context(entry, prefix)
        given = {k for k in GRID_FIELDS if k in entry}
        out.append(resolve_commodity(ctx, given, reader, currency, prefix))
    known = {c.commodity for c in out}
    for commodity in dict.fromkeys(device_commodities):
        if commodity != ELECTRICITY and commodity not in known:
            ctx = CommodityContext(commodity=commodity)
            out.append(resolve_commodity(ctx, set(), reader, currency, "flex-context"))
            known.add(commodity)
    return out


def resolve_couplings(
    models: list[tuple[str, StorageFlexModel, StorageDevice]], reader: SeriesReader
) -> list[Coupling]:
    """The converters of the flex-model: ports grouped by ``coupling``, with signed coefficients.

    ``models`` holds each storage entry's field prefix, its flex-model and its
    resolved device. A coupling with one port only couples nothing, which is an error.
    """
    groups: dict[str, list[tuple[str, StorageDevice, np.ndarray]]] = {}
    for prefix, m, dev in models:
        if m.coupling_coefficient is not None and m.coupling is None:
            raise InputError(
                "a coupling-coefficient needs a coupling: the name shared by the converter's "
                "ports, e.g. 'chp'",
                f"{prefix}.coupling-coefficient",
            )
        if m.coupling is None:
            continue
        f = f"{prefix}.coupling-coefficient"
        coef = reader.steps(m.coupling_coefficient, f, "", 1.0)
        if np.any(np.isnan(coef)):
            k = int(np.flatnonzero(np.isnan(coef))[0])
            raise InputError(
                f"no coefficient for the step starting {reader.grid.step_start(k).isoformat()}; "
                "cover the whole window",
                f,
            )
        if np.any(coef <= 0):
            raise InputError(
                "must be positive (a magnitude; the port's direction follows its "
                "consumption-capacity and production-capacity)",
                f,
            )
        cons = np.asarray(dev.consumption_capacity)
        prod = np.asarray(dev.production_capacity)
        output = bool(np.all(cons == 0) and np.any(prod > 0))
        groups.setdefault(m.coupling, []).append((prefix, dev, -coef if output else coef))
    out = []
    for name, ports in groups.items():
        if len(ports) < 2:
            raise InputError(
                f"coupling {name!r} has one port only; give each commodity port of the "
                "converter its own flex-model entry with the same coupling",
                f"{ports[0][0]}.coupling",
            )
        out.append(Coupling(name, [d.name for _, d, _ in ports], [c for _, _, c in ports]))
    return out


def electric_groups(groups: list, devices: list, names: dict[str, str]) -> None:
    """Refuse a group with a member of another commodity: groups limit electric power.

    ``names`` maps each device entry's field prefix to its sensor name.
    """
    commodity = {d.name: getattr(d, "commodity", ELECTRICITY) for d in devices}
    where = {name: f for f, name in names.items()}
    for group in groups:
        for member in group.members:
            if commodity.get(member, ELECTRICITY) != ELECTRICITY:
                raise InputError(
                    "a group limits electric power; a device of another commodity "
                    f"({commodity[member]!r}) cannot join one",
                    f"{where[member]}.group",
                )
