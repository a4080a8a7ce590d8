"""Turn flex-model and flex-context JSON plus a window into a ``SiteProblem``.

This is where units, defaults and FlexMeasures semantics are applied:

- Powers become kW, energies kWh, prices currency per kWh. The currency is the
  consumption price's numerator (``EUR`` for ``EUR/MWh``, ``kg`` for ``kg/MWh``);
  every other price must use the same one.
- ``power-capacity`` bounds both directions; ``consumption-capacity`` and
  ``production-capacity`` default to it. Without it, as in FlexMeasures, the
  larger directional capacity is used (the missing direction is then zero),
  else the flex-context's ``site-power-capacity``.
- ``soc-at-start`` defaults to the latest ``state-of-charge`` at or before the
  start (a sensor or a time series), else to 0. Bare SOC numbers are in
  ``soc-unit``, else MWh (FlexMeasures' fallback).
- SOC points between step boundaries are projected onto them (``schemas.flex_devices``).
- ``roundtrip-efficiency`` r sets ``charging-efficiency`` and
  ``discharging-efficiency`` to sqrt(r) unless those are given themselves.
- ``storage-efficiency`` as a plain quantity applies per scheduling step; stated
  for a resolution (``{"value": "99%", "resolution": "PT1H"}``, or a sensor
  series with ``attrs["resolution"]``) it becomes ``e ** (dt / resolution)``.
- ``site-consumption-capacity`` and ``site-production-capacity`` are capped by
  ``site-power-capacity`` (which stays hard).
- Breach prices: given ones make their constraints soft. As in FlexMeasures 1.0,
  ``relax-constraints`` defaults to true; with it (or ``relax-soc-constraints``),
  missing SOC breach prices default to ``DEFAULT_SOC_BREACH_PRICE`` (1000
  currency/kWh); with it (or ``relax-site-capacity-constraints``), site capacity
  breach prices to ``DEFAULT_CAPACITY_BREACH_PRICE`` (10000 currency/kW); device
  capacities only with ``relax-capacity-constraints`` (``DEFAULT_DEVICE_BREACH_PRICE``,
  100 currency/kW). The deprecated price sensor fields fill in no defaults.
  Capacity breach prices per power are charged per kW of breach in each step and
  on the peak breach; per energy, per kWh of breach (kW times the step length).
- Other commodities than electricity (a device's ``commodity``, the
  flex-context's ``commodities``) and converters (``coupling``) are resolved by
  ``schemas.commodities``; the top-level flex-context is electricity's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np

from schemas.commodities import (
    electric_groups,
    resolve_commodities,
    resolve_couplings,
    split_flex_context,
)
from schemas.errors import InputError
from schemas.flex_context import FlexContext, deprecation_notes, parse_flex_context
from schemas.flex_devices import process_device, storage_device
from schemas.flex_groups import parse_flex_entries, resolve_groups
from schemas.flex_model import StorageFlexModel
from schemas.flex_problem import (
    BreachPrices,
    Commitment,
    Device,
    SiteProblem,
    TimeGrid,
)
from schemas.flex_series import (
    DATETIME_MESSAGES,
    Resolver,
    SeriesReader,
    convert,
    currency_of,
    non_negative,
    price_per_power,
)
from schemas.times import parse_aware, parse_duration
from schemas.units import parse_quantity

#: Default SOC breach price with relax-constraints, currency per kWh.
DEFAULT_SOC_BREACH_PRICE = 1000.0
#: Default site capacity breach price with relax-constraints, currency per kW (per step).
DEFAULT_CAPACITY_BREACH_PRICE = 10000.0
#: Default device capacity breach price with relax-capacity-constraints, currency per kW.
DEFAULT_DEVICE_BREACH_PRICE = 100.0


def make_grid(start: Any, duration: Any, resolution: Any) -> TimeGrid:
    """The window: an aware start and whole steps of ``resolution`` over ``duration``."""
    t0 = parse_aware(start, "start", **DATETIME_MESSAGES)
    span = parse_duration(duration, "duration", positive=True)
    res = parse_duration(resolution, "resolution", positive=True)
    steps = span / res
    if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
        raise InputError(
            f"the duration ({duration}) must be a whole number of steps of the resolution "
            f"({resolution})",
            "duration",
        )
    return TimeGrid(t0, res, int(round(steps)))


def _prices(ctx: FlexContext, reader: SeriesReader) -> tuple[str, np.ndarray, np.ndarray]:
    """Currency and consumption/production prices (currency per kWh per step)."""
    grid = reader.grid
    cons_value = ctx.consumption_price
    if cons_value is None:
        cons_value = {"sensor": ctx.consumption_price_sensor}
    prod_value = ctx.production_price
    if prod_value is None and ctx.production_price_sensor is not None:
        prod_value = {"sensor": ctx.production_price_sensor}
    currency = currency_of(cons_value, reader)
    price_unit = f"{currency}/kWh"
    cp = reader.steps(cons_value, "consumption-price", price_unit)
    if np.any(np.isnan(cp)):
        k = int(np.flatnonzero(np.isnan(cp))[0])
        raise InputError(
            f"no price for the step starting {grid.step_start(k).isoformat()}; "
            "cover the whole window",
            "consumption-price",
        )
    pp = reader.steps(prod_value, "production-price", price_unit)
    return currency, cp, np.where(np.isnan(pp), cp, pp)


def _site_power_capacity(ctx: FlexContext, reader: SeriesReader) -> np.ndarray:
    return non_negative(
        reader.steps(ctx.site_power_capacity, "site-power-capacity", "kW", overlap="min"),
        "site-power-capacity",
    )


def _breach_prices(
    ctx: FlexContext, reader: SeriesReader, currency: str, legacy: bool
) -> BreachPrices:
    """Breach prices, with FlexMeasures' defaults where its relax flags ask for them.

    ``legacy`` (the deprecated price sensor fields) fills in no defaults, as in
    FlexMeasures, where those fields predate relaxation.
    """
    n = reader.grid.n
    price_unit = f"{currency}/kWh"
    relax_soc = ctx.relax_soc and not legacy
    relax_site = ctx.relax_site_capacity and not legacy
    relax_device = (
        ctx.relax_capacity_constraints
        and not legacy
        and ctx.consumption_breach_price is None
        and ctx.production_breach_price is None
    )

    def soc_price(value: Any, name: str) -> float | None:
        if value is None:
            return DEFAULT_SOC_BREACH_PRICE if relax_soc else None
        if isinstance(value, list | dict):
            raise InputError(f"give one price, e.g. '1000 {currency}/kWh'", name)
        price = convert(parse_quantity(value, name), price_unit, name)
        if price < 0:
            raise InputError("a breach price must not be negative", name)
        return price

    def cap_price(value: Any, name: str, relax: bool, default: float) -> np.ndarray | None:
        if value is None:
            return np.full(n, default) if relax else None
        arr = price_per_power(value, name, reader, currency)
        if np.any(np.isnan(arr)) or np.any(arr < 0):
            raise InputError("give a non-negative price for every step", name)
        return arr

    return BreachPrices(
        soc_minima=soc_price(ctx.soc_minima_breach_price, "soc-minima-breach-price"),
        soc_maxima=soc_price(ctx.soc_maxima_breach_price, "soc-maxima-breach-price"),
        site_consumption=cap_price(
            ctx.site_consumption_breach_price,
            "site-consumption-breach-price",
            relax_site,
            DEFAULT_CAPACITY_BREACH_PRICE,
        ),
        site_production=cap_price(
            ctx.site_production_breach_price,
            "site-production-breach-price",
            relax_site,
            DEFAULT_CAPACITY_BREACH_PRICE,
        ),
        device_consumption=cap_price(
            ctx.consumption_breach_price,
            "consumption-breach-price",
            relax_device,
            DEFAULT_DEVICE_BREACH_PRICE,
        ),
        device_production=cap_price(
            ctx.production_breach_price,
            "production-breach-price",
            relax_device,
            DEFAULT_DEVICE_BREACH_PRICE,
        ),
    )


def _context(
    ctx: FlexContext,
    reader: SeriesReader,
    devices: list[Device],
    prices: tuple[str, np.ndarray, np.ndarray],
    spc: np.ndarray,
    **extra: Any,
) -> SiteProblem:
    currency, cp, pp = prices
    scc = reader.steps(
        ctx.site_consumption_capacity, "site-consumption-capacity", "kW", overlap="min"
    )
    spr = reader.steps(
        ctx.site_production_capacity, "site-production-capacity", "kW", overlap="min"
    )
    scc = non_negative(np.fmin(scc, spc), "site-consumption-capacity")
    spr = non_negative(np.fmin(spr, spc), "site-production-capacity")

    inflex = non_negative(
        reader.steps(ctx.inflexible_consumption, "inflexible-consumption", "kW", 0.0),
        "inflexible-consumption",
    )
    inflex = inflex - non_negative(
        reader.steps(ctx.inflexible_production, "inflexible-production", "kW", 0.0),
        "inflexible-production",
    )
    for i, ref in enumerate(ctx.inflexible_device_sensors):
        # FlexStream's sensors follow one sign convention: consumption positive.
        inflex = inflex + reader.steps(ref, f"inflexible-device-sensors[{i}]", "kW", 0.0)
    inflex = np.nan_to_num(inflex)

    legacy = ctx.consumption_price_sensor is not None or ctx.production_price_sensor is not None
    outputs = {
        key: ref
        for key, ref in (
            ("aggregate-consumption", ctx.aggregate_consumption),
            ("aggregate-production", ctx.aggregate_production),
            ("aggregate-power", ctx.aggregate_power),
        )
        if ref is not None
    }
    peaks = {
        f"peak_{side}": _peak(getattr(ctx, f"site_peak_{side}"), f"site-peak-{side}", reader)
        for side in ("consumption", "production")
    }
    prices = {
        f"peak_{side}_price": _peak_price(
            getattr(ctx, f"site_peak_{side}_price"), f"site-peak-{side}-price", reader, currency
        )
        for side in ("consumption", "production")
    }
    commitments = [
        _commitment(c, f"commitments[{i}]", reader, currency) for i, c in enumerate(ctx.commitments)
    ]
    names = [c.name for c in commitments]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InputError(f"commitment name {name!r} is used twice", f"commitments[{i}].name")
    return SiteProblem(
        grid=reader.grid,
        devices=devices,
        commitments=commitments,
        consumption_price=cp,
        production_price=pp,
        site_power_capacity=spc,
        site_consumption_capacity=scc,
        site_production_capacity=spr,
        inflexible_power=inflex,
        breach_prices=_breach_prices(ctx, reader, currency, legacy),
        currency=currency,
        outputs=outputs,
        **peaks,
        **prices,
        **extra,
    )


def _commitment(spec: Any, field: str, reader: SeriesReader, currency: str) -> Commitment:
    """One of the flex-context's ``commitments`` (FlexMeasures' fields), per step."""
    if not isinstance(spec, dict):
        raise InputError(
            'give a commitment as an object: {"name": ..., "baseline": ..., "up-price": ...}',
            field,
        )
    unknown = sorted(set(spec) - {"name", "baseline", "up-price", "down-price", "commodity"})
    scoped = [k for k in unknown if k in ("sensors", "group")]
    if scoped:
        raise InputError(
            "FlexStream does not support yet commitments scoped to some devices; leave out "
            f"{scoped[0]!r} to commit the whole site",
            f"{field}.{scoped[0]}",
        )
    if unknown:
        raise InputError(
            "a commitment has name, baseline, up-price, down-price and commodity",
            f"{field}.{unknown[0]}",
        )
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise InputError("give the commitment a name", f"{field}.name")
    if spec.get("commodity", "electricity") != "electricity":
        raise InputError("only electricity commitments are supported", f"{field}.commodity")
    if spec.get("baseline") is None:
        raise InputError("a commitment requires a baseline, e.g. '500 kW'", f"{field}.baseline")
    if spec.get("up-price") is None and spec.get("down-price") is None:
        raise InputError(
            "a commitment requires at least one deviation price (up-price and/or down-price)",
            f"{field}.up-price",
        )
    prices = {}
    for key in ("up-price", "down-price"):
        value = spec.get(key)
        arr = np.zeros(reader.grid.n)
        if value is not None:
            arr = np.nan_to_num(price_per_power(value, f"{field}.{key}", reader, currency))
        prices[key] = arr
    return Commitment(
        name=name,
        baseline=reader.steps(spec["baseline"], f"{field}.baseline", "kW", np.nan),
        up_price=prices["up-price"],
        down_price=prices["down-price"],
    )


def _peak(value: Any, field: str, reader: SeriesReader) -> np.ndarray:
    """The peak already reached (kW per step); 0 kW when not given, as in FlexMeasures."""
    return non_negative(reader.steps(value, field, "kW", 0.0), field)


def _peak_price(value: Any, field: str, reader: SeriesReader, currency: str) -> np.ndarray | None:
    """A peak price as currency per kW of new peak per step; None when not given."""
    if value is None:
        return None
    arr = reader.steps(value, field, f"{currency}/kW", 0.0)
    if np.any(np.isnan(arr)) or np.any(arr < 0):
        raise InputError(
            f"give a non-negative price per power for every step, e.g. '260 {currency}/MW'", field
        )
    return arr


def parse_site_problem(
    flex_model: Any,
    flex_context: Any,
    start: datetime | str,
    duration: timedelta | str,
    resolution: timedelta | str,
    resolver: Resolver | None = None,
) -> SiteProblem:
    """Build the solver's ``SiteProblem`` from FlexMeasures-style JSON (already decoded).

    ``flex_model`` is one object or a list (one per device); ``resolver`` turns
    sensor references into series (see ``schemas.flex_series``). Raises
    ``InputError`` naming the field as written.
    """
    grid = make_grid(start, duration, resolution)
    entries = parse_flex_entries(flex_model)
    split = split_flex_context(flex_context)
    try:
        ctx = parse_flex_context(split.electricity)
        notes = deprecation_notes(split.electricity)
        reader = SeriesReader(grid, resolver)
        prices = _prices(ctx, reader)
        spc = _site_power_capacity(ctx, reader)
    except InputError as exc:
        raise split.renamed(exc) from None
    devices: list[Device] = []
    storages = []
    for f, m in entries.devices:
        if isinstance(m, StorageFlexModel):
            dev = storage_device(m, f, reader, spc, notes)
            devices.append(dev)
            storages.append((f, m, dev))
        else:
            devices.append(process_device(m, f, reader))
    commodities = resolve_commodities(
        split.others, [d.commodity for _, _, d in storages], reader, prices[0]
    )
    couplings = resolve_couplings(storages, reader)
    names = {f: m.sensor for f, m in entries.devices}
    groups, inflexible = resolve_groups(entries, reader, names.__getitem__)
    electric_groups(groups, devices, names)
    try:
        problem = _context(
            ctx, reader, devices, prices, spc, commodities=commodities, couplings=couplings
        )
    except InputError as exc:
        raise split.renamed(exc) from None
    problem.inflexible_power = problem.inflexible_power + inflexible
    problem.groups = groups
    problem.notes = notes
    return problem
