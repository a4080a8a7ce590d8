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
- SOC points between step boundaries are projected onto them (see ``_project_soc``).
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

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pint

from schemas.commodities import (
    electric_groups,
    resolve_commodities,
    resolve_couplings,
    split_flex_context,
)
from schemas.errors import InputError
from schemas.flex_context import FlexContext, deprecation_notes, parse_flex_context
from schemas.flex_groups import parse_flex_entries, resolve_groups
from schemas.flex_model import ProcessFlexModel, StorageFlexModel
from schemas.flex_problem import (
    BreachPrices,
    Commitment,
    Device,
    OptimizationSense,
    ProcessDevice,
    ProcessType,
    SiteProblem,
    StorageDevice,
    TimeGrid,
)
from schemas.flex_series import (
    DATETIME_MESSAGES,
    Resolver,
    SeriesReader,
    convert,
    is_sensor_ref,
    magnitude,
    step_times,
)
from schemas.operation_modes import parse_operation_modes
from schemas.times import parse_aware, parse_duration
from schemas.units import Q_, parse_quantity

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


def _soc_at_start(m: StorageFlexModel, f: str, reader: SeriesReader, bare: str) -> float:
    """``soc-at-start``, else the latest ``state-of-charge`` at or before the start, else 0."""
    if m.soc_at_start is not None:
        if is_sensor_ref(m.soc_at_start) or isinstance(m.soc_at_start, list):
            raise InputError(
                "give one quantity such as '10 kWh'; to read it from a sensor, name that "
                "sensor in state-of-charge and leave soc-at-start out",
                f"{f}.soc-at-start",
            )
        return magnitude(m.soc_at_start, "kWh", f"{f}.soc-at-start", bare)
    soc = m.state_of_charge
    field = f"{f}.state-of-charge"
    start = reader.grid.start
    if is_sensor_ref(soc):
        resolved = reader._resolve(soc, field)
        if isinstance(resolved, list | tuple):
            return magnitude(resolved[0], "kWh", field, bare) if resolved else 0.0
        unit_name = resolved.attrs.get("unit", "")
        known = resolved.sort_index()
        known = known[known.index <= start].dropna()
        if not len(known):
            raise InputError(
                f"the sensor has no state of charge at or before {start.isoformat()}; "
                "give soc-at-start",
                field,
            )
        return float(known.iloc[-1]) * convert(Q_(1.0, unit_name), "kWh", field)
    if isinstance(soc, list):
        latest: tuple[datetime, float] | None = None
        for i, point in enumerate(soc):
            if not isinstance(point, dict):
                raise InputError('expected {"datetime": ..., "value": ...}', f"{field}[{i}]")
            key = "datetime" if "datetime" in point else "start"
            when = parse_aware(point.get(key), f"{field}[{i}].{key}", **DATETIME_MESSAGES)
            if when <= start and (latest is None or when >= latest[0]):
                v = magnitude(point.get("value"), "kWh", f"{field}[{i}].value", bare)
                latest = (when, v)
        if latest is None:
            raise InputError(
                f"no state of charge at or before {start.isoformat()}; give soc-at-start", field
            )
        return latest[1]
    if soc is not None:
        return magnitude(soc, "kWh", field, bare)
    return 0.0


def _power_capacities(
    m: StorageFlexModel, f: str, reader: SeriesReader, site_power: np.ndarray, notes: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Power, consumption and production capacity (kW per step) with FlexMeasures' fall-backs.

    Without ``power-capacity``: the larger of the directional capacities given
    (the missing direction is then zero, when the given one is not), else the
    flex-context's ``site-power-capacity``.
    """
    n = reader.grid.n
    power = reader.steps(m.power_capacity, f"{f}.power-capacity", "kW", np.nan, overlap="min")
    cons = reader.steps(
        m.consumption_capacity, f"{f}.consumption-capacity", "kW", np.nan, overlap="min"
    )
    prod = reader.steps(
        m.production_capacity, f"{f}.production-capacity", "kW", np.nan, overlap="min"
    )
    if m.power_capacity is None:
        has_c, has_p = m.consumption_capacity is not None, m.production_capacity is not None
        if has_c or has_p:
            power = np.fmax(cons, prod)
            if has_c and not has_p and np.any(cons > 0):
                prod = np.zeros(n)
            if has_p and not has_c and np.any(prod > 0):
                cons = np.zeros(n)
            notes.append(
                f"{f}.power-capacity is not given; using the larger of consumption-capacity "
                "and production-capacity, as FlexMeasures does"
            )
        elif not np.all(np.isnan(site_power)):
            power = site_power.copy()
            notes.append(
                f"{f}.power-capacity is not given; using the flex-context's "
                "site-power-capacity, as FlexMeasures does"
            )
        else:
            raise InputError(
                "give power-capacity, e.g. '11 kW' (without it FlexMeasures falls back to "
                "consumption-capacity/production-capacity or the flex-context's "
                "site-power-capacity, and none is given)",
                f"{f}.power-capacity",
            )
    power = np.where(np.isnan(power), np.inf, power)
    cons = np.minimum(np.where(np.isnan(cons), power, cons), power)
    prod = np.minimum(np.where(np.isnan(prod), power, prod), power)
    for arr, name in (
        (power, "power-capacity"),
        (cons, "consumption-capacity"),
        (prod, "production-capacity"),
    ):
        if np.any(arr < 0):
            raise InputError("must not be negative (give magnitudes)", f"{f}.{name}")
    return power, cons, prod


def _project_soc(
    off_grid: dict[str, list[tuple[float, float]]],
    targets: np.ndarray,
    minima: np.ndarray,
    maxima: np.ndarray,
    dev: dict[str, Any],
    dt: float,
    f: str,
) -> None:
    """Project SOC points between two step boundaries onto them, as FlexMeasures does.

    For a point with value ``v`` a fraction ``a`` into step ``k`` (between boundaries
    ``k`` and ``k + 1``), with the energy the device can charge or discharge in
    that step, ``C = cons[k] * ec[k] * dt`` and ``D = prod[k] / ed[k] * dt``:

    - a target becomes an exact target ``v`` at ``k + 1`` plus, at ``k``, a minimum
      ``v - a C`` and a maximum ``v + a D`` (the target stays reachable in time);
    - a minimum becomes minima ``v - a C`` at ``k`` and ``v - (1 - a) D`` at ``k + 1``;
    - a maximum becomes maxima ``v + a D`` at ``k`` and ``v + (1 - a) C`` at ``k + 1``.

    Projected minima and maxima are clamped to ``soc-min``/``soc-max``, and the
    stricter one wins where several land on one boundary.
    """
    cons, prod = dev["cons"], dev["prod"]
    ec, ed = dev["ec"], dev["ed"]
    lo, hi = dev["soc_min"], dev["soc_max"]

    def put_min(k: int, v: float) -> None:
        v = max(v, lo)
        minima[k] = v if np.isnan(minima[k]) else max(minima[k], v)

    def put_max(k: int, v: float) -> None:
        v = min(v, hi)
        maxima[k] = v if np.isnan(maxima[k]) else min(maxima[k], v)

    for kind, points in off_grid.items():
        for pos, v in points:
            k = int(np.floor(pos))
            a = pos - k
            charge = cons[k] * ec[k] * dt
            discharge = prod[k] / ed[k] * dt
            if kind == "soc-targets":
                old = targets[k + 1]
                if not np.isnan(old) and abs(old - v) > 1e-9:
                    raise InputError(
                        f"two different targets ({old:g} and {v:g} kWh) land on one step "
                        "boundary once projected onto the schedule's steps",
                        f"{f}.soc-targets",
                    )
                targets[k + 1] = v
                put_min(k, v - a * charge)
                put_max(k, v + a * discharge)
            elif kind == "soc-minima":
                put_min(k, v - a * charge)
                put_min(k + 1, v - (1 - a) * discharge)
            else:
                put_max(k, v + a * discharge)
                put_max(k + 1, v + (1 - a) * charge)


def _storage(
    m: StorageFlexModel, f: str, reader: SeriesReader, site_power: np.ndarray, notes: list[str]
) -> StorageDevice:
    grid = reader.grid
    n = grid.n
    bare = m.soc_unit or "MWh"

    def soc_value(value: Any, name: str) -> float:
        if is_sensor_ref(value) or isinstance(value, list):
            raise InputError(
                f"give one quantity such as '40 kWh'; for values that vary in time use "
                f"soc-{'minima' if name == 'soc-min' else 'maxima'}",
                f"{f}.{name}",
            )
        return magnitude(value, "kWh", f"{f}.{name}", bare)

    soc_at_start = _soc_at_start(m, f, reader, bare)
    soc_min = 0.0 if m.soc_min is None else soc_value(m.soc_min, "soc-min")
    soc_max = math.inf if m.soc_max is None else soc_value(m.soc_max, "soc-max")
    # A converter's port that states nothing about a state of charge has none.
    has_soc = m.coupling is None or bool(_SOC_FIELDS & m.model_fields_set)
    if not has_soc:
        soc_min = -math.inf
    if soc_min > soc_max:
        raise InputError(
            f"soc-min ({soc_min:g} kWh) exceeds soc-max ({soc_max:g} kWh)", f"{f}.soc-min"
        )
    power, cons, prod = _power_capacities(m, f, reader, site_power, notes)

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

    off_grid: dict[str, list[tuple[float, float]]] = {
        "soc-minima": [],
        "soc-maxima": [],
        "soc-targets": [],
    }
    minima = reader.soc_points(
        m.soc_minima, f"{f}.soc-minima", "kWh", "max", bare, off_grid["soc-minima"]
    )
    maxima = reader.soc_points(
        m.soc_maxima, f"{f}.soc-maxima", "kWh", "min", bare, off_grid["soc-maxima"]
    )
    targets = reader.soc_points(
        m.soc_targets, f"{f}.soc-targets", "kWh", "equal", bare, off_grid["soc-targets"]
    )
    if any(off_grid.values()):
        dev = {"cons": cons, "prod": prod, "ec": ec, "ed": ed}
        dev.update(soc_min=soc_min, soc_max=soc_max)
        _project_soc(off_grid, targets, minima, maxima, dev, grid.dt_hours, f)
    usage = reader.steps(m.soc_usage, f"{f}.soc-usage", "kW", 0.0)
    gain = reader.steps(m.soc_gain, f"{f}.soc-gain", "kW", 0.0)
    outputs = {
        key: ref
        for key, ref in (
            ("state-of-charge", m.state_of_charge if is_sensor_ref(m.state_of_charge) else None),
            ("consumption", m.consumption),
            ("production", m.production),
        )
        if ref is not None
    }
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
        power_capacity=power,
        charging_efficiency=ec,
        discharging_efficiency=ed,
        storage_efficiency=e,
        soc_usage=np.nan_to_num(usage),
        soc_gain=np.nan_to_num(gain),
        prefer_charging_sooner=m.prefer_charging_sooner,
        prefer_curtailing_later=m.prefer_curtailing_later,
        outputs=outputs,
        commodity=m.commodity,
        has_soc=has_soc,
        operation_modes=()
        if m.operation_modes is None
        else parse_operation_modes(m.operation_modes, f"{f}.operation-modes"),
    )


#: Flex-model fields about a state of charge (their python names).
_SOC_FIELDS = frozenset(
    {
        "state_of_charge",
        "soc_at_start",
        "soc_min",
        "soc_max",
        "soc_minima",
        "soc_maxima",
        "soc_targets",
        "soc_usage",
        "soc_gain",
        "storage_efficiency",
    }
)


def _storage_efficiency(value: Any, field: str, reader: SeriesReader) -> np.ndarray:
    """Per-step storage efficiency, scaling values stated for another resolution."""
    dt = reader.grid.resolution
    stated: timedelta | None = None
    if isinstance(value, dict) and "resolution" in value and not is_sensor_ref(value):
        stated = parse_duration(value["resolution"], f"{field}.resolution", positive=True)
        value = value.get("value")
    if is_sensor_ref(value):
        resolved = reader._resolve(value, field)
        res = getattr(resolved, "attrs", {}).get("resolution")
        if res is not None:
            stated = parse_duration(res, f"{field}.resolution", positive=True)
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
    # FlexMeasures takes a bare number in the sensor's unit; offline that is kW.
    power = magnitude(m.power, "kW", f"{f}.power", "kW")
    duration = parse_duration(m.duration, f"{f}.duration", positive=True)
    # A process longer than the window fills the window, as in FlexMeasures.
    steps = min(math.ceil(duration / grid.resolution - 1e-9), grid.n)
    allowed = np.ones(grid.n, dtype=bool)
    if isinstance(grid.start.tzinfo, timezone):
        starts: Any = step_times(grid, grid.n)
    else:
        # Python's wall-clock arithmetic, as everywhere else for such a start.
        starts = np.array([grid.step_start(k) for k in range(grid.n)])
    ends = starts + grid.resolution
    for i, seg in enumerate(m.time_restrictions):
        lo, hi = reader.segment_bounds(seg, f"{f}.time-restrictions[{i}]")
        # A step is blocked when any part of it overlaps the restriction.
        allowed &= ~np.asarray((starts < hi) & (ends > lo))
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


def _prices(ctx: FlexContext, reader: SeriesReader) -> tuple[str, np.ndarray, np.ndarray]:
    """Currency and consumption/production prices (currency per kWh per step)."""
    grid = reader.grid
    cons_value = ctx.consumption_price
    if cons_value is None:
        cons_value = {"sensor": ctx.consumption_price_sensor}
    prod_value = ctx.production_price
    if prod_value is None and ctx.production_price_sensor is not None:
        prod_value = {"sensor": ctx.production_price_sensor}
    currency = _currency(cons_value, reader)
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
    return _non_negative(
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
        arr = _price_per_power(value, name, reader, currency)
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
    scc = _non_negative(np.fmin(scc, spc), "site-consumption-capacity")
    spr = _non_negative(np.fmin(spr, spc), "site-production-capacity")

    inflex = _non_negative(
        reader.steps(ctx.inflexible_consumption, "inflexible-consumption", "kW", 0.0),
        "inflexible-consumption",
    )
    inflex = inflex - _non_negative(
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
            arr = np.nan_to_num(_price_per_power(value, f"{field}.{key}", reader, currency))
        prices[key] = arr
    return Commitment(
        name=name,
        baseline=reader.steps(spec["baseline"], f"{field}.baseline", "kW", np.nan),
        up_price=prices["up-price"],
        down_price=prices["down-price"],
    )


def _peak(value: Any, field: str, reader: SeriesReader) -> np.ndarray:
    """The peak already reached (kW per step); 0 kW when not given, as in FlexMeasures."""
    return _non_negative(reader.steps(value, field, "kW", 0.0), field)


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
            dev = _storage(m, f, reader, spc, notes)
            devices.append(dev)
            storages.append((f, m, dev))
        else:
            devices.append(_process(m, f, reader))
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
