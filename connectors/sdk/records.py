"""The pure parts of the SDK: argument checks, record builders, answer collapsing.

:class:`Schedule` (what controllers receive) is the record of ``schemas.schedule``.

Usable and tested without Kafka.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.errors import InputError
from schemas.schedule import USABLE, Schedule
from schemas.times import aware

#: The statuses whose schedule can be followed.
OK_STATUSES = USABLE
#: Values per BeliefBatch message at most (the worker accepts 50,000 by default).
MAX_VALUES = 5000
_MS = timedelta(milliseconds=1)


def _duration(value: Any, name: str, positive: bool = True) -> timedelta:
    if not isinstance(value, timedelta):
        raise InputError(f"expected a timedelta, got {type(value).__name__}", name)
    if positive and value <= timedelta(0):
        raise InputError(f"{value} must be positive", name)
    if value % _MS:
        raise InputError(f"{value} is not a whole number of milliseconds", name)
    return value


def _name(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"expected a non-empty name, got {value!r}", name)
    return value


def _json_text(value: Any, name: str, allow_list: bool) -> str | None:
    """``value`` (a dict, a list of dicts, or their JSON text) as JSON text; None stays None."""
    if value is None:
        return None
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"is not valid JSON ({exc.msg})", name) from None
    if not isinstance(data, dict | list) or (isinstance(data, list) and not allow_list):
        what = "a dict or a list of dicts" if allow_list else "a dict"
        raise InputError(f"expected {what} (or its JSON text), got {type(data).__name__}", name)
    for i, item in enumerate(data if isinstance(data, list) else []):
        if not isinstance(item, dict):
            raise InputError(f"expected a dict, got {type(item).__name__}", f"{name}[{i}]")
    return value if isinstance(value, str) else json.dumps(data)


def _common(
    source: Any,
    belief_time: datetime | None,
    belief_horizon: timedelta | None,
    unit: str | None,
    cumulative_probability: float,
) -> dict[str, Any]:
    if belief_time is not None and belief_horizon is not None:
        raise InputError("give belief_time or belief_horizon, not both", "belief_horizon")
    if unit is not None:
        _name(unit, "unit")
    if not 0.0 <= float(cumulative_probability) <= 1.0:
        raise InputError(f"{cumulative_probability} is outside [0, 1]", "cumulative_probability")
    horizon = (
        _duration(belief_horizon, "belief_horizon", positive=False) if belief_horizon else None
    )
    return {
        "belief_time": aware(belief_time, "belief_time") if belief_time is not None else None,
        "belief_horizon_ms": horizon // _MS if horizon is not None else None,
        "source": _name(source, "source"),
        "cumulative_probability": float(cumulative_probability),
        "unit": unit,
    }


def _floats(values: Any) -> list[float]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InputError("expected a sequence of numbers", "values")
    out = []
    for i, v in enumerate(values):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise InputError(f"{v!r} is not a number", f"values[{i}]") from None
    return out


def batch_records(
    sensor: str,
    start: datetime,
    resolution: timedelta,
    values: Iterable[float],
    *,
    source: str,
    belief_time: datetime | None = None,
    belief_horizon: timedelta | None = None,
    unit: str | None = None,
    cumulative_probability: float = 0.5,
    max_values: int = MAX_VALUES,
) -> list[dict[str, Any]]:
    """``BeliefBatch`` records of a regular series, at most ``max_values`` values each.

    Message ``k`` starts at ``start + k * max_values * resolution`` (exact for
    fixed-length steps; a series of whole local days across DST should fit in one
    message). NaN and infinite values are sent as they are: the worker
    dead-letters each of them alone and stores the rest.
    """
    sensor = _name(sensor, "sensor")
    start = aware(start, "start")
    resolution = _duration(resolution, "resolution")
    common = _common(source, belief_time, belief_horizon, unit, cumulative_probability)
    series = _floats(values)
    if not series:
        raise InputError("the series is empty; send at least one value", "values")
    if max_values < 1:
        raise InputError(f"{max_values} must be at least 1", "max_values")
    return [
        {
            "sensor": sensor,
            "start": start + i * resolution,
            "resolution_ms": resolution // _MS,
            "values": series[i : i + max_values],
            **common,
        }
        for i in range(0, len(series), max_values)
    ]


def belief_record(
    sensor: str,
    event_start: datetime,
    value: float,
    *,
    resolution: timedelta,
    source: str,
    belief_time: datetime | None = None,
    belief_horizon: timedelta | None = None,
    unit: str | None = None,
    cumulative_probability: float = 0.5,
) -> dict[str, Any]:
    """One ``Belief`` record; ``resolution`` is the event's duration (0 for instantaneous)."""
    try:
        event_value = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{value!r} is not a number", "value") from None
    return {
        "sensor": _name(sensor, "sensor"),
        "event_start": aware(event_start, "event_start"),
        "event_resolution_ms": _duration(resolution, "resolution", positive=False) // _MS,
        "event_value": event_value,
        **_common(source, belief_time, belief_horizon, unit, cumulative_probability),
    }


def _request_id(value: Any) -> str:
    """The given request id, or a new unique one when none is given."""
    if value is None:
        return str(uuid.uuid4())
    if not isinstance(value, str) or not value.strip():
        raise InputError(
            f"expected a non-empty id, got {value!r}; leave it out (None) to have a unique "
            "one made",
            "request_id",
        )
    return value


def build_request(
    asset: str,
    start: datetime,
    duration: timedelta,
    resolution: timedelta = timedelta(minutes=15),
    *,
    devices: Iterable[str] = (),
    flex_model: Any = None,
    flex_context: Any = None,
    request_id: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """A ``ScheduleRequest`` record; ``flex_model``/``flex_context`` are JSON-able or JSON text."""
    if isinstance(devices, str):
        raise InputError(f"give a list of sensor names, e.g. [{devices!r}]", "devices")
    duration = _duration(duration, "duration")
    resolution = _duration(resolution, "resolution")
    if duration % resolution:
        raise InputError(f"{duration} is not a whole number of {resolution} steps", "duration")
    return {
        "request_id": _request_id(request_id),
        "asset": _name(asset, "asset"),
        "devices": [_name(d, f"devices[{i}]") for i, d in enumerate(devices)],
        "start": aware(start, "start"),
        "duration_ms": duration // _MS,
        "resolution_ms": resolution // _MS,
        "flex_model": _json_text(flex_model, "flex_model", allow_list=True),
        "flex_context": _json_text(flex_context, "flex_context", allow_list=False),
        "requested_at": now if now is not None else datetime.now(UTC),
        "origin": "request",
    }


def decode_schedule(value: bytes | None) -> Schedule | None:
    """A message of the schedules topic as a :class:`Schedule`; None if it is not one."""
    if not value:
        return None
    try:
        return Schedule.from_avro(value)
    except (InputError, KeyError, TypeError):
        return None


def collapse(schedules: Iterable[Schedule]) -> list[Schedule]:
    """One schedule per (request id, sensor): the last one, in first-seen order."""
    out: dict[tuple[str, str], Schedule] = {}
    for s in schedules:
        out.pop((s.request_id, s.sensor), None)
        out[(s.request_id, s.sensor)] = s
    return sorted(out.values(), key=lambda s: s.sensor)


class AnswerBook:
    """Answers received per request id, with the completion rule of ``get_schedule``."""

    def __init__(self) -> None:
        self._answers: dict[str, dict[str, Schedule]] = {}
        self._last: dict[str, float] = {}

    def add(self, schedule: Schedule, arrived: float) -> None:
        """Record an answer (a later one for the same sensor replaces the earlier)."""
        self._answers.setdefault(schedule.request_id, {})[schedule.sensor] = schedule
        self._last[schedule.request_id] = arrived

    def answers(self, request_id: str) -> list[Schedule]:
        """The devices' answers so far, one per sensor, sorted by sensor.

        Records for the output sensors a request names (``consumption``,
        ``aggregate-power``, ...) travel on the same topic, keyed by their own
        sensor, so they may arrive after the devices' answers: they are left
        out here (they are stored like the rest), which keeps the answer the
        same however the partitions interleave.
        """
        got = self._answers.get(request_id, {}).values()
        devices = next((set(s.answered_devices) for s in got if s.answered_devices), None)
        kept = [s for s in got if devices is None or s.sensor in devices]
        return sorted(kept, key=lambda s: s.sensor)

    def complete(
        self, request_id: str, expect: Sequence[str] | None, now: float, settle: float
    ) -> bool:
        """Every expected device answered, or (expect None) no new answer for ``settle`` s."""
        got = self._answers.get(request_id)
        if not got:
            return False
        if not expect:
            # Answers name every device of their request (schema version 2).
            expect = next((s.answered_devices for s in got.values() if s.answered_devices), None)
        if expect:
            return set(expect) <= set(got)
        return now - self._last[request_id] >= settle

    def pop(self, request_id: str) -> list[Schedule]:
        """Take the answers of a request out of the book."""
        out = self.answers(request_id)
        self._answers.pop(request_id, None)
        self._last.pop(request_id, None)
        return out
