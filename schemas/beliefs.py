"""Sensors and beliefs: the pydantic model of a sensor, and validation of decoded readings.

A decoded ``Belief`` or ``BeliefBatch`` record (see ``schemas/*.avsc``) is turned
into columns ready for the history store, or into rejections that name the
offending field and say what to do. Validation is pure: the caller passes the
known sensors and the current time (the clock is injectable).

Belief times: a record carries either one ``belief_time`` or a
``belief_horizon_ms`` (time between belief and event end); with neither, the
values are measurements known at event end (horizon 0). Producers (``flexstream
publish``, the SDK) send the time of publishing instead when their user gave
neither (:func:`publishing_belief_time`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import attrgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.errors import InputError
from schemas.rejections import Rejection, RejectionCode
from schemas.times import EPOCH as _EPOCH
from schemas.times import parse_duration, to_us
from schemas.units import conversion_factor, is_convertible, unit

_US = 1_000_000
_DAY_US = 24 * 3600 * _US
_ONE_MS = timedelta(milliseconds=1)
#: Longest series span or belief horizon accepted (keeps times within int64 microseconds).
_MAX_SPAN = timedelta(days=100 * 366)
_MAX_SPAN_US = _MAX_SPAN // timedelta(microseconds=1)
#: Event and belief times accepted: the range of the history's DateTime64 columns.
TIME_MIN = datetime(1900, 1, 1, tzinfo=UTC)
TIME_MAX = datetime(2299, 12, 31, tzinfo=UTC)


class Sensor(BaseModel):
    """A sensor: what its values mean (unit), their event resolution and local timezone."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    name: str = Field(min_length=1, description="Unique name, used as message key.")
    unit: str = Field(description="pint-compatible unit, e.g. kW, MW, kWh, EUR/MWh, %.")
    event_resolution: timedelta = Field(
        default=timedelta(minutes=15),
        description="Duration of each event (ISO 8601, e.g. PT15M); PT0M for instantaneous.",
    )
    timezone: str = Field(default="UTC", description="IANA timezone for local-time reports.")
    off_grid: Literal["reject", "floor"] = Field(
        default="reject",
        alias="off-grid",
        description="What to do with event starts off the resolution grid: reject or floor.",
    )
    description: str = ""

    @field_validator("event_resolution", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> timedelta:
        d = parse_duration(v, "event_resolution")
        if d < timedelta(0):
            raise ValueError("must not be negative")
        return d

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        unit(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {v!r}; use an IANA name such as Europe/Amsterdam"
            ) from None
        return v


@dataclass
class BeliefColumns:
    """Validated beliefs as columns (times in microseconds since the epoch, UTC)."""

    sensor: list[str] = field(default_factory=list)
    event_start_us: list[np.ndarray] = field(default_factory=list)
    event_resolution_s: list[np.ndarray] = field(default_factory=list)
    belief_time_us: list[np.ndarray] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    cumulative_probability: list[np.ndarray] = field(default_factory=list)
    event_value: list[np.ndarray] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(self.counts)

    def extend(self, other: BeliefColumns) -> None:
        """Append another set of columns."""
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    @classmethod
    def concat(cls, parts: Sequence[BeliefColumns]) -> BeliefColumns:
        """Columns of all ``parts`` in order: as ``extend`` with each, in one pass per column."""
        return cls(
            *(
                list(chain.from_iterable(map(attrgetter(name), parts)))
                for name in cls.__dataclass_fields__
            )
        )

    def to_arrow(self) -> Any:
        """Return a pyarrow table in the column order of the beliefs table."""
        import pyarrow as pa

        counts = np.asarray(self.counts, dtype=np.int64)

        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype)

        ts = pa.timestamp("us", tz="UTC")
        return pa.table(
            {
                "sensor": pa.array(np.repeat(np.asarray(self.sensor, dtype=object), counts)),
                "event_start": pa.array(cat(self.event_start_us, np.int64), type=ts),
                "event_resolution": pa.array(cat(self.event_resolution_s, np.uint32)),
                "belief_time": pa.array(cat(self.belief_time_us, np.int64), type=ts),
                "source": pa.array(np.repeat(np.asarray(self.source, dtype=object), counts)),
                "cumulative_probability": pa.array(cat(self.cumulative_probability, np.float64)),
                "event_value": pa.array(cat(self.event_value, np.float64)),
            }
        )


@dataclass(frozen=True)
class Limits:
    """Validation limits (from settings)."""

    max_batch_values: int = 50_000
    max_belief_time_ahead: timedelta = timedelta(minutes=5)
    #: Original bytes kept in a dead letter at most (the rest: size and digest).
    max_dead_letter_bytes: int = 256 * 1024


_TIME_MIN_US = to_us(TIME_MIN)
_TIME_MAX_US = to_us(TIME_MAX)


def _grid_offset_us(start_us: int, res_us: int, tz: str) -> int:
    """Microseconds by which ``start_us`` lies after the last grid point of its sensor."""
    if res_us <= 0:
        return 0
    if res_us >= 3600 * _US and tz != "UTC" and (24 * 3600 * _US) % res_us == 0:
        local = (_EPOCH + timedelta(microseconds=start_us)).astimezone(ZoneInfo(tz))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        since_midnight = to_us(local.astimezone(UTC)) - to_us(midnight.astimezone(UTC))
        # A local day lasts 23 or 25 h across DST: a daily grid has only local midnight.
        return since_midnight if res_us == _DAY_US else since_midnight % res_us
    return start_us % res_us


def _in_local_days(res_us: int, tz: str) -> bool:
    """Whether events of ``res_us`` step in local calendar days rather than fixed time."""
    return res_us >= _DAY_US and res_us % _DAY_US == 0 and tz != "UTC"


def _event_starts(start_us: int, res_us: int, n: int, tz: str) -> np.ndarray:
    """Starts of ``n`` consecutive events from ``start_us``.

    Events of whole days in a local timezone step in local calendar days, so
    each starts at local midnight also across DST (such days last 23 or 25 h).
    """
    if _in_local_days(res_us, tz):
        local = (_EPOCH + timedelta(microseconds=start_us)).astimezone(ZoneInfo(tz))
        step = timedelta(days=res_us // _DAY_US)
        return np.fromiter(
            (to_us((local + i * step).astimezone(UTC)) for i in range(n)), np.int64, count=n
        )
    return start_us + res_us * np.arange(n, dtype=np.int64)


def validate(
    kind: str,
    record: Mapping[str, Any],
    sensors: Mapping[str, Sensor],
    now: datetime,
    limits: Limits = Limits(),  # noqa: B008 - frozen dataclass
) -> tuple[BeliefColumns, list[Rejection]]:
    """Validate a decoded ``Belief`` or ``BeliefBatch`` record.

    Returns the valid beliefs as columns and a rejection per invalid item (or one
    for the whole message). Values in a compatible unit are converted to the
    sensor's unit.

    A ``Belief`` with a float value (as Avro decodes it) is checked with plain
    Python numbers: numpy costs microseconds per call on one-element arrays, and
    single readings arrive one message each. Both ways compute the same few
    summaries (last event end, earliest belief time, how many values are
    finite, how many beliefs lie too far ahead), which the rules below then share.
    """
    if kind not in ("Belief", "BeliefBatch"):
        return BeliefColumns(), [
            Rejection(RejectionCode.BAD_SCHEMA, f"a {kind} is not a reading", "value")
        ]
    name = record.get("sensor")
    sensor = sensors.get(name) if isinstance(name, str) else None
    if sensor is None:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.UNKNOWN_SENSOR,
                f"sensor {name!r} is not registered; register it first, or fix the sensor name",
                "sensor",
            )
        ]
    values: float | np.ndarray
    if kind == "BeliefBatch":
        values = np.asarray(record["values"], dtype=np.float64)
        n = len(values)
        res_ms = int(record["resolution_ms"])
        start = record["start"]
        res_field, start_field = "resolution_ms", "start"
        if res_ms <= 0:
            return BeliefColumns(), [
                Rejection(
                    RejectionCode.BAD_RESOLUTION, "must be positive (milliseconds)", res_field
                )
            ]
    else:
        value = record["event_value"]
        # Exactly float: anything else takes numpy's conversion, as a batch value would.
        values = value if type(value) is float else np.asarray([value], dtype=np.float64)
        n = 1 if type(values) is float else len(values)
        res_ms = int(record["event_resolution_ms"])
        start = record["event_start"]
        res_field, start_field = "event_resolution_ms", "event_start"
    if n == 0:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.EMPTY_BATCH, "the batch has no values; send at least one", "values"
            )
        ]
    if n > limits.max_batch_values:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.OVERSIZED_BATCH,
                f"{n} values exceed the limit of {limits.max_batch_values} per message; "
                "split the series into smaller batches",
                "values",
            )
        ]
    sensor_res_ms = sensor.event_resolution // _ONE_MS
    # Instantaneous sensors (e.g. state of charge) may come as a series at any spacing.
    instantaneous = sensor_res_ms == 0 and kind == "BeliefBatch"
    if res_ms != sensor_res_ms and not instantaneous:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.RESOLUTION_MISMATCH,
                f"{res_ms} ms does not match sensor {sensor.name!r}'s event resolution of "
                f"{sensor_res_ms} ms; resample to the sensor's resolution before sending",
                res_field,
            )
        ]
    src = record.get("source") or ""
    if not src.strip():
        return BeliefColumns(), [
            Rejection(RejectionCode.BAD_SOURCE, "must name who holds the belief", "source")
        ]
    cp = float(record.get("cumulative_probability", 0.5))
    if not 0.0 <= cp <= 1.0:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.BAD_PROBABILITY, f"{cp} is outside [0, 1]", "cumulative_probability"
            )
        ]
    rec_unit = record.get("unit")
    if rec_unit and rec_unit != sensor.unit:
        if not is_convertible(rec_unit, sensor.unit):
            return BeliefColumns(), [
                Rejection(
                    RejectionCode.INCOMPATIBLE_UNIT,
                    f"unit {rec_unit!r} cannot be converted to sensor {sensor.name!r}'s unit "
                    f"{sensor.unit!r}; send values in a compatible unit",
                    "unit",
                )
            ]
        # Overflow gives inf (a Python float too), rejected below as not finite.
        with np.errstate(over="ignore"):
            values = values * conversion_factor(rec_unit, sensor.unit)

    belief_time = record.get("belief_time")
    for name, t in ((start_field, start), ("belief_time", belief_time)):
        if t is not None and not TIME_MIN <= t <= TIME_MAX:
            return BeliefColumns(), [
                Rejection(
                    RejectionCode.OUT_OF_RANGE,
                    f"{t.isoformat()} lies outside {TIME_MIN.date()}..{TIME_MAX.date()}, the "
                    "range the history keeps; check the producer's clock and time unit",
                    name,
                )
            ]
    start_us = to_us(start)
    res_us = res_ms * 1000
    off = _grid_offset_us(start_us, sensor_res_ms * 1000, sensor.timezone)
    if off:
        if sensor.off_grid == "floor":
            start_us -= off
        else:
            return BeliefColumns(), [
                Rejection(
                    RejectionCode.OFF_GRID,
                    f"{start.isoformat()} is not on sensor {sensor.name!r}'s "
                    f"{sensor.event_resolution} grid; align event starts to the grid",
                    start_field,
                )
            ]
    horizon_us = int(record.get("belief_horizon_ms") or 0) * 1000
    if abs(horizon_us) > _MAX_SPAN_US:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.BAD_HORIZON,
                f"{horizon_us // 1000} ms is more than {_MAX_SPAN.days} days; "
                "send the horizon in milliseconds",
                "belief_horizon_ms",
            )
        ]
    if res_us * n > _MAX_SPAN_US:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.BAD_RESOLUTION,
                f"{n} events of {res_ms} ms span more than {_MAX_SPAN.days} days; "
                "send the resolution in milliseconds",
                res_field,
            )
        ]
    tz = "UTC" if instantaneous else sensor.timezone
    duration_us = 0 if instantaneous else res_us
    bt_us = None if belief_time is None else to_us(belief_time)
    starts: int | np.ndarray
    bt: int | np.ndarray
    if type(values) is float:
        # One event, in Python numbers. Ends follow from the next start, so a local day
        # across DST ends at local midnight.
        starts = start_us
        end_us = (
            int(_event_starts(start_us, res_us, 2, tz)[-1])
            if _in_local_days(res_us, tz)
            else start_us + res_us
        )
        bt = bt_us if bt_us is not None else (starts if instantaneous else end_us) - horizon_us
        bt_min = bt
        n_finite = 1 if math.isfinite(values) else 0
    else:
        edges = _event_starts(start_us, res_us, n + 1, tz)
        starts = edges[:-1]
        end_us = int(edges[-1])
        if bt_us is not None:
            bt = np.full(n, bt_us, dtype=np.int64)
        else:
            bt = (starts if instantaneous else edges[1:]) - horizon_us
        bt_min = int(bt.min())
        keep = np.isfinite(values)
        n_finite = int(np.count_nonzero(keep))

    if end_us > _TIME_MAX_US or bt_min < _TIME_MIN_US:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.OUT_OF_RANGE,
                f"the events or their belief times reach outside {TIME_MIN.date()}.."
                f"{TIME_MAX.date()}, the range the history keeps; check the series' length, "
                "resolution and belief horizon",
                res_field if end_us > _TIME_MAX_US else "belief_horizon_ms",
            )
        ]
    rejections: list[Rejection] = []
    vfield = "values" if kind == "BeliefBatch" else "event_value"
    if n_finite == 0:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.NOT_FINITE, "no value is a finite number; send finite values", vfield
            )
        ]
    # Item by item only in a series with some good values (so in arrays: n > 1).
    if n_finite < n:
        for i in np.flatnonzero(~keep):
            rejections.append(
                Rejection(
                    RejectionCode.NOT_FINITE,
                    f"{values[i]} is not a finite number; send only finite values "
                    "(leave a gap out of the batch instead of NaN)",
                    f"{vfield}[{i}]" if kind == "BeliefBatch" else vfield,
                    int(i) if kind == "BeliefBatch" else None,
                )
            )
    ahead = bt > to_us(now + limits.max_belief_time_ahead)  # a bool for one Python int
    n_ahead = int(ahead) if type(ahead) is bool else int(np.count_nonzero(ahead))
    ahead_field = "belief_time" if belief_time is not None else "belief_horizon_ms"
    if n_ahead == n:
        return BeliefColumns(), [
            Rejection(
                RejectionCode.BELIEF_IN_FUTURE,
                f"every belief time is more than {limits.max_belief_time_ahead} after the "
                "receiver's clock; check the producer's clock or the belief horizon",
                ahead_field,
            )
        ]
    if n_ahead:
        for i in np.flatnonzero(ahead & keep):
            rejections.append(
                Rejection(
                    RejectionCode.BELIEF_IN_FUTURE,
                    f"belief time is more than {limits.max_belief_time_ahead} after the "
                    "receiver's clock; check the producer's clock or the belief horizon",
                    ahead_field,
                    int(i) if kind == "BeliefBatch" else None,
                )
            )
        keep &= ~ahead
    if type(values) is float:
        # Nothing of one value was rejected if we got here.
        m = 1
        values = np.array([values])
        starts = np.array([starts], dtype=np.int64)
        bt = np.array([bt], dtype=np.int64)
        res_s = np.array([duration_us // _US], dtype=np.uint32)
        cps = np.array([cp])
    else:
        if n_finite < n or n_ahead:
            values, starts, bt = values[keep], starts[keep], bt[keep]
        m = len(values)
        res_s = np.full(m, duration_us // _US, dtype=np.uint32)
        cps = np.full(m, cp)
    if not m:
        return BeliefColumns(), rejections
    out = BeliefColumns(
        sensor=[sensor.name],
        event_start_us=[starts],
        event_resolution_s=[res_s],
        belief_time_us=[bt],
        source=[src],
        cumulative_probability=[cps],
        event_value=[values],
        counts=[m],
    )
    return out, rejections


def publishing_belief_time(
    belief_time: datetime | None,
    belief_horizon: timedelta | None,
    now: Callable[[], datetime],
) -> datetime | None:
    """The belief time producers send with readings whose user gave ``belief_time`` or not.

    The given belief time; none with a ``belief_horizon`` (the worker reckons it
    from each event's end); otherwise ``now()``, the time of publishing:
    "believed now", as FlexMeasures does for posted data. So a day-ahead price
    published today for tomorrow lands, where the worker's own default (known at
    the event's end, a belief time after the receiver's clock) would
    dead-letter it. Measurements known at their event's end say so with a
    horizon of zero.
    """
    if belief_time is not None or belief_horizon is not None:
        return belief_time
    return now()


def load_sensors(data: Any, where: str = "sensors") -> dict[str, Sensor]:
    """Sensors from a list of objects or a mapping of name to object (as in a YAML file)."""
    from schemas.documents import parse_model

    if isinstance(data, dict) and "sensors" in data:
        data = data["sensors"]
    if isinstance(data, dict):
        data = [{"name": k, **(v or {})} for k, v in data.items()]
    if not isinstance(data, list):
        raise InputError("expected a list of sensors (name, unit, event_resolution, ...)", where)
    out: dict[str, Sensor] = {}
    for i, item in enumerate(data):
        s = parse_model(Sensor, item, f"{where}[{i}]")
        out[s.name] = s
    return out
