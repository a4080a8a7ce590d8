"""From a schedule request to ``Schedule`` records: resolve inputs, solve, describe the answer.

Pure (no Kafka, ClickHouse or faust): the agent passes the registry's assets
and sensors and a belief lookup (the belief state). Sensor references in the
asset's flex-model and flex-context (``{"sensor": "name"}``) are resolved here:

- series fields (prices, inflexible consumption and production, capacities,
  usage, gain) take the current value of every event overlapping the window;
  an event must cover every step, else the request is answered with status
  ``error`` naming the sensor and the uncovered span;
- ``soc-at-start`` takes the most recent state-of-charge belief at or before
  the start (status ``error`` when there is none); without ``soc-at-start``, the
  ``state-of-charge`` sensor is read the same way, and the scheduled state of
  charge is written to it.

A request that cannot be read as asked (no request id, a ``flex_model`` or
``flex_context`` override that is not valid JSON or not a JSON object, an
unknown asset or device) is answered with status ``invalid``, its message
naming the field.

Every request gets an answer, one record per device: a schedule, or a status
that says what went wrong. Never a silent drop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from schemas.assets import Asset, check_parent, effective_flex_context
from schemas.beliefs import BeliefColumns, Sensor
from schemas.errors import InputError
from schemas.flex_problem import SiteProblem
from schemas.flex_request import parse_site_problem
from schemas.schedule import Schedule, ScheduleRequestContext, Status
from schemas.times import format_utc
from solvers import ScheduleResult, schedule
from solvers.portfolio_result import PortfolioResult
from streams.scheduling.inputs import Lookup, MissingInput, json_override, make_resolver, sensor_ref
from streams.scheduling.outputs import output_series
from streams.scheduling.portfolio import (
    PreparedPortfolio,
    is_portfolio,
    portfolio_answers,
    portfolio_sites,
    prepare_portfolio,
    solve_portfolio,
)

SCHEDULER_SOURCE = "flexstream-scheduler"
_US = 1_000_000


@dataclass
class Prepared:
    """A request resolved into a solvable problem."""

    asset: Asset
    devices: list[str]
    problem: SiteProblem
    soc_sensors: dict[str, str]
    #: What the forecast fallback filled in (said in the schedules' message).
    notes: list[str] = field(default_factory=list)


def prepare(
    request: Mapping[str, Any],
    assets: Mapping[str, Asset],
    sensors: Mapping[str, Sensor],
    lookup: Lookup,
    forecasters: Mapping[str, list[str]] | None = None,
) -> Prepared | PreparedPortfolio:
    """Resolve a decoded ``ScheduleRequest`` into a problem; raises InputError/MissingInput.

    A portfolio asset (no flex-model, children with flex-models) is resolved
    into its sites' problems (:mod:`streams.scheduling.portfolio`).

    ``forecasters``: per sensor, its forecasters' names; a series field whose
    sensor lacks beliefs for some steps takes them from their latest median
    forecasts (see :func:`streams.scheduling.inputs.make_resolver`).
    """
    rid = request.get("request_id")
    if not isinstance(rid, str) or not rid.strip():
        raise InputError(
            "the request has no id; give every request a unique id (the SDK and the CLI "
            "make one) so its answers can be matched to it",
            "request_id",
        )
    name = request["asset"]
    asset = assets.get(name)
    if asset is None:
        raise InputError(f"asset {name!r} is not registered; register it first", "asset")
    if is_portfolio(asset, assets):

        def prepare_site(site_request, view, site_sensors, site_lookup):
            return prepare(site_request, view, site_sensors, site_lookup, forecasters)

        return prepare_portfolio(request, asset, assets, sensors, lookup, forecasters, prepare_site)
    flex_model = [dict(m) for m in asset.flex_model]
    override = json_override(request, "flex_model")
    if override is not None:
        items = override if isinstance(override, list) else [override]
        for i, o in enumerate(items):
            if not isinstance(o, dict):
                where = f"flex_model[{i}]" if isinstance(override, list) else "flex_model"
                raise InputError(
                    f"expected a JSON object of flex-model fields, got {type(o).__name__}", where
                )
            target = next((m for m in flex_model if m["sensor"] == o.get("sensor")), None)
            if target is None and i < len(flex_model) and "sensor" not in o:
                target = flex_model[i]
            if target is None:
                raise InputError(
                    f"device {o.get('sensor')!r} is not in asset {name!r}", "flex_model"
                )
            target.update(o)
    wanted = list(request.get("devices") or [])
    unknown = [d for d in wanted if d not in asset.devices]
    if unknown:
        raise InputError(f"devices {unknown} are not in asset {name!r}", "devices")
    if wanted:
        flex_model = [m for m in flex_model if m["sensor"] in wanted]
    if not flex_model:
        raise InputError(f"asset {name!r} has no flex-model to schedule", "asset")
    context = effective_flex_context(name, assets)
    context_override = json_override(request, "flex_context")
    if context_override is not None:
        if not isinstance(context_override, dict):
            raise InputError(
                "expected a JSON object of flex-context fields, got "
                f"{type(context_override).__name__}",
                "flex_context",
            )
        context.update(context_override)
    start: datetime = request["start"]
    duration = timedelta(milliseconds=int(request["duration_ms"]))
    step = timedelta(milliseconds=int(request["resolution_ms"]))
    if duration <= timedelta(0) or step <= timedelta(0):
        raise InputError("duration and resolution must be positive", "duration_ms")
    soc_sensors: dict[str, str] = {}
    for i, m in enumerate(flex_model):
        # As in FlexMeasures, the state-of-charge sensor is where soc-at-start is read
        # from when it is not given, and where the scheduled SOC is written.
        state_ref = sensor_ref(m.get("state-of-charge"))
        soc_ref = sensor_ref(m.get("soc-at-start"))
        field = f"flex-model[{i}].soc-at-start"
        if soc_ref is None and state_ref is not None and "soc-at-start" not in m:
            soc_ref, field = state_ref, f"flex-model[{i}].state-of-charge"
        if state_ref is not None:
            m.pop("state-of-charge")  # resolved here, not as a series over the window
        if soc_ref is None:
            if state_ref is not None:
                soc_sensors[m["sensor"]] = state_ref
            continue
        sensor = sensors.get(soc_ref)
        if sensor is None:
            raise InputError(f"sensor {soc_ref!r} is not registered; register it first", field)
        latest = lookup.latest_at(soc_ref, start)
        if latest is None:
            raise MissingInput(
                f"no state of charge of sensor {soc_ref!r} at or before {format_utc(start)}; "
                "publish a state-of-charge reading",
                field,
            )
        m["soc-at-start"] = f"{latest[1]!r} {sensor.unit}"
        soc_sensors[m["sensor"]] = state_ref or soc_ref
    notes: list[str] = []
    resolver = make_resolver(lookup, sensors, start, start + duration, step, forecasters, notes)
    problem = parse_site_problem(flex_model, context, start, duration, step, resolver=resolver)
    return Prepared(asset, [m["sensor"] for m in flex_model], problem, soc_sensors, notes)


def prepare_or_fail(
    request: Mapping[str, Any],
    assets: Mapping[str, Asset],
    sensors: Mapping[str, Sensor],
    lookup: Lookup,
    now: datetime,
    forecasters: Mapping[str, list[str]] | None = None,
) -> tuple[Prepared | PreparedPortfolio | None, list[Schedule]]:
    """``prepare``, or the answers of a request that cannot be prepared (one per device).

    Missing beliefs answer with status ``error`` (publish them and ask again); any
    other input problem with ``invalid``. The message names the field.
    """
    try:
        return prepare(request, assets, sensors, lookup, forecasters), []
    except MissingInput as exc:
        status, message = Status.ERROR, str(exc)
    except InputError as exc:
        status, message = Status.INVALID, str(exc)
    return None, failure(request, devices_of(request, assets), status, message, now)


def solve(
    prepared: Prepared | PreparedPortfolio, solver: str = "highs", time_limit: float | None = None
) -> tuple[ScheduleResult | PortfolioResult, float]:
    """Solve; return the result and the wall time in milliseconds."""
    t = time.perf_counter()
    if isinstance(prepared, PreparedPortfolio):
        result = solve_portfolio(prepared, solver, time_limit)
    else:
        result = schedule(prepared.problem, solver=solver, time_limit=time_limit)
    return result, (time.perf_counter() - t) * 1000.0


def context_of(
    request: Mapping[str, Any], devices: list[str], now: datetime
) -> ScheduleRequestContext:
    """What every answer to ``request`` carries: ids, window, devices and belief time ``now``."""
    return ScheduleRequestContext(
        request_id=request.get("request_id") or "",
        asset=request.get("asset") or "",
        devices=tuple(devices),
        start=request.get("start") or now,
        resolution=timedelta(milliseconds=int(request.get("resolution_ms") or 0)),
        belief_time=now,
        origin=request.get("origin", "request"),
    )


def answer(
    request: Mapping[str, Any],
    prepared: Prepared | PreparedPortfolio,
    result: ScheduleResult | PortfolioResult,
    solver_ms: float,
    now: datetime,
) -> list[Schedule]:
    """One ``Schedule`` per device of a solved request (its message names any forecast used).

    The output sensors the request names get a record each after the devices'
    (:mod:`streams.scheduling.outputs`), with the same status, costs and message.
    """
    if isinstance(prepared, PreparedPortfolio):
        return portfolio_answers(request, prepared, result, solver_ms, now, answer)
    answers = result.to_schedules(context_of(request, prepared.devices, now), solver_ms)
    if answers:
        first = answers[0]
        answers += [
            replace(first, sensor=sensor, values=[float(v) for v in values], state_of_charge=[])
            for sensor, values in output_series(prepared.problem, result)
        ]
    if not prepared.notes:
        return answers
    used = "inputs from forecasts: " + "; ".join(prepared.notes)
    return [replace(a, message=f"{a.message}; {used}" if a.message else used) for a in answers]


def failure(
    request: Mapping[str, Any], devices: list[str], status: Status, message: str, now: datetime
) -> list[Schedule]:
    """Answers to a request which could not be scheduled, one per device."""
    return context_of(request, devices, now).failed(status, message)


def devices_of(request: Mapping[str, Any], assets: Mapping[str, Asset]) -> list[str]:
    """The devices a request is about (for answering it even when it fails)."""
    if request.get("devices"):
        return list(request["devices"])
    asset = assets.get(request.get("asset", ""))
    if asset and not asset.devices:
        children = [d for a in portfolio_sites(asset.name, assets) for d in a.devices]
        if children:
            return children
    return asset.devices if asset and asset.devices else [request.get("asset") or "unknown"]


def as_beliefs(
    answers: list[Schedule], soc_sensors: Mapping[str, str] | None = None
) -> BeliefColumns:
    """Schedules as beliefs from the scheduler source: power per step, SOC per boundary.

    The SOC path is stored under ``soc_sensors[device]``, else under the
    schedule's own ``soc_sensor`` (as it travels on the schedules topic).
    """
    soc_sensors = soc_sensors or {}
    cols = BeliefColumns()
    for a in answers:
        if not a.values:
            continue
        start_us = int(pd.Timestamp(a.start).value // 1000)
        step_us = a.resolution // timedelta(microseconds=1)
        bt_us = int(pd.Timestamp(a.belief_time).value // 1000)
        series = [(a.sensor, np.asarray(a.values), step_us // _US)]
        soc_sensor = soc_sensors.get(a.sensor, a.soc_sensor)
        if a.state_of_charge and soc_sensor:
            series.append((soc_sensor, np.asarray(a.state_of_charge), 0))
        for sensor, values, res_s in series:
            n = len(values)
            cols.sensor.append(sensor)
            cols.source.append(SCHEDULER_SOURCE)
            cols.counts.append(n)
            cols.event_value.append(values.astype(float))
            cols.event_start_us.append(start_us + step_us * np.arange(n, dtype=np.int64))
            cols.belief_time_us.append(np.full(n, bt_us, dtype=np.int64))
            cols.event_resolution_s.append(np.full(n, res_s, dtype=np.uint32))
            cols.cumulative_probability.append(np.full(n, 0.5))
    return cols


class _ZeroLookup:
    """A lookup that believes 0 for every sensor at every time (to check an asset's shape)."""

    def series(self, sensor: str, start: datetime, end: datetime) -> pd.Series:
        idx = pd.DatetimeIndex([start], name="event_start")
        s = pd.Series([0.0], index=idx)
        s.attrs["resolution"] = end - start
        return s

    def latest_at(self, sensor: str, at: datetime) -> tuple[datetime, float]:
        return at, 0.0


def validate_asset(
    asset: Asset, assets: Mapping[str, Asset], sensors: Mapping[str, Sensor]
) -> None:
    """Check an asset's parent, flex-model and flex-context as the scheduler will read them.

    Its parents must not lead back to an asset on the way (a loop); quantities,
    units and field names are checked; every referenced sensor must be
    registered. Raises InputError naming the field.
    """
    known = {**assets, asset.name: asset}
    check_parent(asset.name, known)
    if not asset.flex_model:
        return
    start = datetime(2026, 1, 1, tzinfo=UTC)
    request: dict[str, Any] = {
        "request_id": "validation",
        "asset": asset.name,
        "start": start,
        "duration_ms": 3_600_000,
        "resolution_ms": 900_000,
    }
    if "consumption-price" not in effective_flex_context(asset.name, known):
        # A request may still bring the price; check the rest with a placeholder.
        request["flex_context"] = json.dumps({"consumption-price": "0 EUR/MWh"})
    prepare(request, known, sensors, _ZeroLookup())
