"""Turn flex-model and flex-context JSON plus a window into a ``SiteProblem``.

This is where units, defaults and FlexMeasures semantics are applied:

- Powers become kW, energies kWh, prices currency per kWh. The currency is the
  consumption price's numerator (``EUR`` for ``EUR/MWh``, ``kg`` for ``kg/MWh``);
  every other price must use the same one.
- ``power-capacity`` gives both directions unless ``consumption-capacity`` or
  ``production-capacity`` say otherwise; one of them is required.
- ``roundtrip-efficiency`` r sets ``charging-efficiency`` and
  ``discharging-efficiency`` to sqrt(r) unless those are given themselves.
- ``storage-efficiency`` as a plain quantity applies per scheduling step; stated
  for a resolution (``{"value": "99%", "resolution": "PT1H"}``, or a sensor
  series with ``attrs["resolution"]``) it becomes ``e ** (dt / resolution)``.
- ``site-consumption-capacity`` and ``site-production-capacity`` default to
  ``site-power-capacity`` (which stays hard).
- Breach prices: given ones make their constraints soft. With
  ``relax-constraints`` true, missing ones default to ``DEFAULT_SOC_BREACH_PRICE``
  (1000 currency/kWh) and ``DEFAULT_CAPACITY_BREACH_PRICE`` (10000 currency/kW).
  Capacity breach prices per power are charged per kW of breach in each step; per
  energy, per kWh of breach (kW times the step length).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pint

from schemas.errors import InputError
from schemas.flex_context import FlexContext, parse_flex_context
from schemas.flex_model import (
    FlexModel,
    ProcessFlexModel,
    StorageFlexModel,
    parse_flex_models,
)
from schemas.flex_problem import (
    BreachPrices,
    Device,
    OptimizationSense,
    ProcessDevice,
    ProcessType,
    SiteProblem,
    StorageDevice,
    TimeGrid,
)
from schemas.flex_series import (
    Resolver,
    SeriesReader,
    convert,
    is_sensor_ref,
    parse_datetime,
    parse_duration,
)
from schemas.units import Q_, parse_quantity

#: Default SOC breach price with relax-constraints, currency per kWh.
DEFAULT_SOC_BREACH_PRICE = 1000.0
#: Default site capacity breach price with relax-constraints, currency per kW (per step).
DEFAULT_CAPACITY_BREACH_PRICE = 10000.0


def make_grid(start: Any, duration: Any, resolution: Any) -> TimeGrid:
    """The window: an aware start and whole steps of ``resolution`` over ``duration``."""
    t0 = parse_datetime(start, "start")
    span = parse_duration(duration, "duration")
    res = parse_duration(resolution, "resolution")
    steps = span / res
    if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
        raise InputError(
            f"the duration ({duration}) must be a whole number of steps of the resolution "
            f"({resolution})",
            "duration",
        )
    return TimeGrid(t0, res, int(round(steps)))


def _currency(value: Any, reader: SeriesReader) -> str:
    """The unit a price is counted in (its numerator), e.g. ``EUR`` or ``kg``."""
    sample = value
    if isinstance(value, list) and value and isinstance(value[0], dict):
        sample = value[0].get("value")
    if is_sensor_ref(sample):
        resolved = reader._resolve(sample, "consumption-price")
        unit_name = getattr(resolved, "attrs", {}).get("unit")
        q = Q_(1.0, unit_name) if unit_name else parse_quantity(resolved[0], "consumption-price")
    else:
        q = parse_quantity(sample, "consumption-price")
    base = (Q_(1.0, q.units) * Q_(1.0, "kWh")).to_base_units()
    dims = base.dimensionality
    if q.dimensionless or "[length]" in dims or "[time]" in dims:
        raise InputError(
            f"'{q:~}' is not a price per energy; write e.g. '100 EUR/MWh' or '350 kg/MWh'",
            "consumption-price",
        )
    return f"{base.units:~}"


def _price_per_power(value: Any, field: str, reader: SeriesReader, currency: str) -> np.ndarray:
    """A capacity breach price as currency per kW per step."""
    sample = value[0].get("value") if isinstance(value, list) and value else value
    if not is_sensor_ref(sample):
        q = parse_quantity(sample, field)
        try:
            q.to(f"{currency}/kWh")
            per_energy = True
        except pint.errors.DimensionalityError:
            per_energy = False
        if per_energy:
            return reader.steps(value, field, f"{currency}/kWh", np.nan) * reader.grid.dt_hours
    return reader.steps(value, field, f"{currency}/kW", np.nan)


def _storage(m: StorageFlexModel, f: str, reader: SeriesReader) -> StorageDevice:
    grid = reader.grid
    n = grid.n
    soc_unit = m.soc_unit or "kWh"

    def soc_value(value: Any, name: str) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool) and m.soc_unit:
            return float(Q_(value, soc_unit).to("kWh").magnitude)
        q = parse_quantity(value, f"{f}.{name}")
        return convert(q, "kWh", f"{f}.{name}")

    soc_at_start = soc_value(m.soc_at_start, "soc-at-start")
    soc_min = 0.0 if m.soc_min is None else soc_value(m.soc_min, "soc-min")
    soc_max = math.inf if m.soc_max is None else soc_value(m.soc_max, "soc-max")
    if soc_min > soc_max:
        raise InputError(
            f"soc-min ({soc_min:g} kWh) exceeds soc-max ({soc_max:g} kWh)", f"{f}.soc-min"
        )
    if m.power_capacity is None and (
        m.consumption_capacity is None or m.production_capacity is None
    ):
        raise InputError(
            "give power-capacity (or both consumption-capacity and production-capacity), "
            "e.g. '11 kW'",
            f"{f}.power-capacity",
        )
    power = reader.steps(m.power_capacity, f"{f}.power-capacity", "kW", np.inf)
    cons = reader.steps(m.consumption_capacity, f"{f}.consumption-capacity", "kW", np.nan)
    prod = reader.steps(m.production_capacity, f"{f}.production-capacity", "kW", np.nan)
    cons = np.where(np.isnan(cons), power, cons)
    prod = np.where(np.isnan(prod), power, prod)
    for arr, name in (
        (power, "power-capacity"),
        (cons, "consumption-capacity"),
        (prod, "production-capacity"),
    ):
        if np.any(arr < 0):
            raise InputError("must not be negative (give magnitudes)", f"{f}.{name}")

    rt = None
    if m.roundtrip_efficiency is not None:
        rt = reader.steps(m.roundtrip_efficiency, f"{f}.roundtrip-efficiency", "", 1.0)
        if np.any(rt <= 0) or np.any(rt > 1):
            raise InputError("must lie in (0%, 100%]", f"{f}.roundtrip-efficiency")
    default_eff = np.sqrt(rt) if rt is not None else np.ones(n)
    ec = reader.steps(m.charging_efficiency, f"{f}.charging-efficiency", "", np.nan)
    ed = reader.steps(m.discharging_efficiency, f"{f}.discharging-efficiency", "", np.nan)
    ec = np.where(np.isnan(ec), default_eff, ec)
    ed = np.where(np.isnan(ed), default_eff, ed)
    if np.any(ec <= 0):
        raise InputError("must be positive", f"{f}.charging-efficiency")
    if np.any(ed <= 0) or np.any(ed > 1):
        raise InputError("must lie in (0%, 100%]", f"{f}.discharging-efficiency")
    e = _storage_efficiency(m.storage_efficiency, f"{f}.storage-efficiency", reader)

    minima = reader.soc_points(m.soc_minima, f"{f}.soc-minima", "kWh", "max")
    maxima = reader.soc_points(m.soc_maxima, f"{f}.soc-maxima", "kWh", "min")
    targets = reader.soc_points(m.soc_targets, f"{f}.soc-targets", "kWh", "equal")
    usage = reader.steps(m.soc_usage, f"{f}.soc-usage", "kW", 0.0)
    gain = reader.steps(m.soc_gain, f"{f}.soc-gain", "kW", 0.0)
    return StorageDevice(
        name=m.sensor,
        n=n,
        soc_at_start=soc_at_start,
        soc_min=soc_min,
        soc_max=soc_max,
        soc_minima=minima,
        soc_maxima=maxima,
        soc_targets=targets,
        consumption_capacity=cons,
        production_capacity=prod,
        charging_efficiency=ec,
        discharging_efficiency=ed,
        storage_efficiency=e,
        soc_usage=np.nan_to_num(usage),
        soc_gain=np.nan_to_num(gain),
        prefer_charging_sooner=m.prefer_charging_sooner,
    )


def _storage_efficiency(value: Any, field: str, reader: SeriesReader) -> np.ndarray:
    """Per-step storage efficiency, scaling values stated for another resolution."""
    dt = reader.grid.resolution
    stated: timedelta | None = None
    if isinstance(value, dict) and "resolution" in value and not is_sensor_ref(value):
        stated = parse_duration(value["resolution"], f"{field}.resolution")
        value = value.get("value")
    if is_sensor_ref(value):
        resolved = reader._resolve(value, field)
        res = getattr(resolved, "attrs", {}).get("resolution")
        if res is not None:
            stated = parse_duration(res, f"{field}.resolution")
        reader = SeriesReader(reader.grid, lambda ref, fld: resolved)
    e = reader.steps(value, field, "", 1.0)
    if np.any(e <= 0) or np.any(e > 1):
        raise InputError("must lie in (0%, 100%]", field)
    if stated is not None:
        e = e ** (dt / stated)
    return e


def _process(m: ProcessFlexModel, f: str, reader: SeriesReader) -> ProcessDevice:
    grid = reader.grid
    if isinstance(m.power, list | dict):
        raise InputError("a process's power is one quantity, e.g. '20 kW'", f"{f}.power")
    power = convert(parse_quantity(m.power, f"{f}.power"), "kW", f"{f}.power")
    duration = parse_duration(m.duration, f"{f}.duration")
    steps = math.ceil(duration / grid.resolution - 1e-9)
    allowed = np.ones(grid.n, dtype=bool)
    starts = np.array([grid.step_start(k) for k in range(grid.n)])
    ends = starts + grid.resolution
    for i, seg in enumerate(m.time_restrictions):
        lo, hi = reader.segment_bounds(seg, f"{f}.time-restrictions[{i}]")
        # A step is blocked when any part of it overlaps the restriction.
        allowed &= ~((starts < hi) & (ends > lo))
    return ProcessDevice(
        name=m.sensor,
        n=grid.n,
        power=power,
        duration_steps=steps,
        process_type=ProcessType(m.process_type),
        allowed=allowed,
        sense=OptimizationSense(m.optimization_sense),
    )


def _non_negative(arr: np.ndarray, field: str) -> np.ndarray:
    if np.any(arr < 0):
        raise InputError("give magnitudes (not negative values)", field)
    return arr


def _context(ctx: FlexContext, reader: SeriesReader, devices: list[Device]) -> SiteProblem:
    grid = reader.grid
    currency = _currency(ctx.consumption_price, reader)
    price_unit = f"{currency}/kWh"
    cp = reader.steps(ctx.consumption_price, "consumption-price", price_unit)
    if np.any(np.isnan(cp)):
        k = int(np.flatnonzero(np.isnan(cp))[0])
        raise InputError(
            f"no price for the step starting {grid.step_start(k).isoformat()}; "
            "cover the whole window",
            "consumption-price",
        )
    pp = reader.steps(ctx.production_price, "production-price", price_unit)
    pp = np.where(np.isnan(pp), cp, pp)

    spc = _non_negative(
        reader.steps(ctx.site_power_capacity, "site-power-capacity", "kW"), "site-power-capacity"
    )
    scc = reader.steps(ctx.site_consumption_capacity, "site-consumption-capacity", "kW")
    spr = reader.steps(ctx.site_production_capacity, "site-production-capacity", "kW")
    scc = _non_negative(np.where(np.isnan(scc), spc, scc), "site-consumption-capacity")
    spr = _non_negative(np.where(np.isnan(spr), spc, spr), "site-production-capacity")

    inflex = _non_negative(
        reader.steps(ctx.inflexible_consumption, "inflexible-consumption", "kW", 0.0),
        "inflexible-consumption",
    )
    inflex = inflex - _non_negative(
        reader.steps(ctx.inflexible_production, "inflexible-production", "kW", 0.0),
        "inflexible-production",
    )
    for i, ref in enumerate(ctx.inflexible_device_sensors):
        # Device sensors follow the sign convention: consumption positive.
        inflex = inflex + reader.steps(ref, f"inflexible-device-sensors[{i}]", "kW", 0.0)
    inflex = np.nan_to_num(inflex)

    relax = ctx.relax_constraints

    def soc_price(value: Any, name: str) -> float | None:
        if value is None:
            return DEFAULT_SOC_BREACH_PRICE if relax else None
        if isinstance(value, list | dict):
            raise InputError(f"give one price, e.g. '1000 {currency}/kWh'", name)
        price = convert(parse_quantity(value, name), price_unit, name)
        if price < 0:
            raise InputError("a breach price must not be negative", name)
        return price

    def cap_price(value: Any, name: str) -> np.ndarray | None:
        if value is None:
            return np.full(grid.n, DEFAULT_CAPACITY_BREACH_PRICE) if relax else None
        arr = _price_per_power(value, name, reader, currency)
        if np.any(np.isnan(arr)) or np.any(arr < 0):
            raise InputError("give a non-negative price for every step", name)
        return arr

    breach = BreachPrices(
        soc_minima=soc_price(ctx.soc_minima_breach_price, "soc-minima-breach-price"),
        soc_maxima=soc_price(ctx.soc_maxima_breach_price, "soc-maxima-breach-price"),
        site_consumption=cap_price(
            ctx.site_consumption_breach_price, "site-consumption-breach-price"
        ),
        site_production=cap_price(ctx.site_production_breach_price, "site-production-breach-price"),
    )
    return SiteProblem(
        grid=grid,
        devices=devices,
        consumption_price=cp,
        production_price=pp,
        site_power_capacity=spc,
        site_consumption_capacity=scc,
        site_production_capacity=spr,
        inflexible_power=inflex,
        breach_prices=breach,
        currency=currency,
    )


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
    models: list[FlexModel] = parse_flex_models(flex_model)
    ctx = parse_flex_context(flex_context)
    reader = SeriesReader(grid, resolver)
    devices: list[Device] = []
    for i, m in enumerate(models):
        f = "flex-model" if isinstance(flex_model, dict) else f"flex-model[{i}]"
        if isinstance(m, StorageFlexModel):
            devices.append(_storage(m, f, reader))
        else:
            devices.append(_process(m, f, reader))
    return _context(ctx, reader, devices)
