"""File importer: CSV readings into ``Belief`` / ``BeliefBatch`` records.

The CSV has a header with ``event_start`` and ``event_value`` and optionally
``sensor`` (else given by the caller), ``belief_time``, ``belief_horizon``
(ISO 8601 duration before event end), ``source``, ``unit``,
``cumulative_probability`` and ``event_resolution`` (ISO 8601). Times carry an
offset or a ``Z``; naive times are rejected. Consecutive rows of one sensor that
share source, belief time (or horizon), unit and probability and are evenly
spaced become one batch message (up to ``max_batch`` values), which is what
makes high throughput possible.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from schemas.beliefs import parse_duration
from schemas.errors import InputError

_GROUP = ["sensor", "source", "belief_time", "belief_horizon", "unit", "cumulative_probability"]


@dataclass(frozen=True)
class Reading:
    """One message to publish: its key and the record of its schema."""

    key: str
    schema: str
    record: dict[str, Any]

    @property
    def count(self) -> int:
        """How many beliefs the message carries."""
        return len(self.record["values"]) if self.schema == "BeliefBatch" else 1


def _parse_times(col: pd.Series, name: str, optional: bool = False) -> pd.Series:
    text = col.astype(str).str.strip()
    missing = col.isna() if optional else pd.Series(False, index=col.index)
    naive = ~missing & ~text.str.contains(r"(?:Z|[+-]\d{2}:?\d{2})$", regex=True)
    if naive.any():
        row = int(np.flatnonzero(naive.to_numpy())[0])
        raise InputError(
            f"time {text.iloc[row]!r} (row {row + 1}) has no UTC offset; write ISO 8601 with "
            "an offset, e.g. 2026-01-01T00:00:00+01:00 or ...Z",
            name,
        )
    try:
        return pd.to_datetime(text.mask(missing), utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise InputError(f"cannot read times: {exc}; write ISO 8601 with an offset", name) from None


def read_csv(
    source: str | Path | IO[str],
    sensor: str | None = None,
    default_source: str = "csv",
    resolution: timedelta | None = None,
    unit: str | None = None,
    max_batch: int = 2000,
) -> list[Reading]:
    """Read a readings CSV into messages (see the module docstring for the columns)."""
    df = pd.read_csv(source, dtype={"sensor": str, "source": str, "unit": str})
    for col in ("event_start", "event_value"):
        if col not in df.columns:
            raise InputError(f"the CSV needs an {col!r} column (header row)", col)
    if "sensor" not in df.columns:
        if not sensor:
            raise InputError("the CSV has no 'sensor' column; add one or pass --sensor", "sensor")
        df["sensor"] = sensor
    df["event_start"] = _parse_times(df["event_start"], "event_start")
    if "belief_time" in df.columns:
        df["belief_time"] = _parse_times(df["belief_time"], "belief_time", optional=True)
    else:
        df["belief_time"] = pd.NaT
    if "belief_horizon" in df.columns:
        # Object dtype keeps blanks as None next to whole milliseconds (not NaN floats).
        df["belief_horizon"] = pd.Series(
            [
                None
                if pd.isna(v)
                else parse_duration(v, "belief_horizon") // timedelta(milliseconds=1)
                for v in df["belief_horizon"]
            ],
            index=df.index,
            dtype=object,
        )
    else:
        df["belief_horizon"] = None
    df["source"] = df["source"].fillna(default_source) if "source" in df else default_source
    df["unit"] = df["unit"] if "unit" in df else unit
    if "cumulative_probability" not in df:
        df["cumulative_probability"] = 0.5
    res_col = (
        [parse_duration(v, "event_resolution") for v in df["event_resolution"]]
        if "event_resolution" in df
        else None
    )
    df["event_value"] = pd.to_numeric(df["event_value"], errors="coerce").astype(float)
    return list(_messages(df, res_col, resolution, max_batch))


def _messages(
    df: pd.DataFrame, res_col: list | None, resolution: timedelta | None, max_batch: int
) -> Iterator[Reading]:
    keys = df.groupby(_GROUP, dropna=False, sort=False).ngroup().to_numpy()
    starts_us = df["event_start"].dt.as_unit("us").astype("int64").to_numpy()
    values = df["event_value"].to_numpy()
    i, n = 0, len(df)
    carry = None  # the step of a run cut at max_batch, for the run's remainder
    while i < n:
        j = i + 1
        row_res = res_col[i] if res_col else resolution
        step = None
        if row_res is not None:
            step = int(row_res // timedelta(microseconds=1))
        elif carry is not None:
            step = carry
        elif j < n and keys[j] == keys[i]:
            step = int(starts_us[j] - starts_us[i])
        while (
            step
            and step > 0
            and j < n
            and j - i < max_batch
            and keys[j] == keys[i]
            and starts_us[j] - starts_us[j - 1] == step
            and (not res_col or res_col[j] == res_col[i])
        ):
            j += 1
        yield _reading(df.iloc[i], starts_us[i], step, values[i:j])
        cut = j - i == max_batch and j < n and keys[j] == keys[i]
        carry = step if cut and starts_us[j] - starts_us[j - 1] == step else None
        i = j


def _reading(row: pd.Series, start_us: int, step_us: int | None, values: np.ndarray) -> Reading:
    sensor = str(row["sensor"])
    bt = row["belief_time"]
    common = {
        "belief_time": None if pd.isna(bt) else bt.to_pydatetime(),
        "belief_horizon_ms": None if pd.isna(row["belief_horizon"]) else int(row["belief_horizon"]),
        "source": str(row["source"]),
        "cumulative_probability": float(row["cumulative_probability"]),
        "unit": None if row["unit"] is None or pd.isna(row["unit"]) else str(row["unit"]),
    }
    start = row["event_start"].to_pydatetime()
    if len(values) > 1:
        rec = {
            "sensor": sensor,
            "start": start,
            "resolution_ms": step_us // 1000,
            "values": values.tolist(),
            **common,
        }
        return Reading(sensor, "BeliefBatch", rec)
    if step_us is None:
        raise InputError(
            f"cannot tell the event resolution of the single reading of {sensor!r} at "
            f"{start.isoformat()}; add an event_resolution column or pass --resolution",
            "event_resolution",
        )
    rec = {
        "sensor": sensor,
        "event_start": start,
        "event_resolution_ms": step_us // 1000,
        "event_value": float(values[0]),
        **common,
    }
    return Reading(sensor, "Belief", rec)
