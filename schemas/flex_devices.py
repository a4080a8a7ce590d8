"""Storage and process devices from their flex-models, read onto the time grid.

Part of ``schemas.flex_request`` (which documents the units, defaults and
FlexMeasures semantics applied): ``storage_device`` for a storage flex-model
(SOC at start, capacities, efficiencies, SOC constraints with off-grid points
projected onto step boundaries, operation modes), ``process_device`` for a
process.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from schemas.errors import InputError
from schemas.flex_model import ProcessFlexModel, StorageFlexModel
from schemas.flex_problem import OptimizationSense, ProcessDevice, ProcessType, StorageDevice
from schemas.flex_series import (
    DATETIME_MESSAGES,
    SeriesReader,
    convert,
    is_sensor_ref,
    magnitude,
    step_times,
)
from schemas.operation_modes import parse_operation_modes
from schemas.times import parse_aware, parse_duration
from schemas.units import Q_


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


def storage_device(
    m: StorageFlexModel, f: str, reader: SeriesReader, site_power: np.ndarray, notes: list[str]
) -> StorageDevice:
    """The storage device of flex-model entry ``f`` (``flex-model[i]``), in kW and kWh.

    ``site_power`` (the site's ``site-power-capacity``) bounds power when the
    entry gives no capacity; deprecation notes are appended to ``notes``.
    """
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


def process_device(m: ProcessFlexModel, f: str, reader: SeriesReader) -> ProcessDevice:
    """The process of flex-model entry ``f``: power, duration, type and allowed steps."""
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
