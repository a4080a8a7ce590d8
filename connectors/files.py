"""File importer: CSV readings into ``Belief`` / ``BeliefBatch`` records.

The CSV has a header with ``event_start`` and ``event_value`` and optionally
``sensor`` (else given by the caller), ``belief_time``, ``belief_horizon``
(ISO 8601 duration before event end), ``source``, ``unit``,
``cumulative_probability`` and ``event_resolution`` (ISO 8601). Other names
for the columns of event starts, values and belief times are mapped with a
:class:`ColumnMap`; the delimiter may be another character than a comma.
Times carry an offset or a ``Z``; times without one are rejected, unless a
timezone is given to read them in (see :func:`_localize` for the night clocks
go back). Consecutive rows of one sensor that
share source, belief time (or horizon), unit and probability and are evenly
spaced become one batch message (up to ``max_batch`` values), which is what
makes high throughput possible.

Every row needs an ``event_start`` and a finite number as ``event_value``: an
empty value is an error, never a NaN sent on (remove the row to leave the
event out). Empty cells of the optional columns mean their default: the
``--source``/``--unit`` given, probability 0.5, and for a row with neither a
belief time nor a horizon the caller's ``belief_time`` or ``belief_horizon``
(``flexstream publish`` gives the time of publishing, as the SDK does:
believed now, as for data posted to FlexMeasures, see
``schemas.beliefs.publishing_belief_time``; without either the worker takes the
event end).
``event_resolution``, when the column is there, must be filled in on every
row. Errors name the column and the row, counting data rows from 1 after the
header (blank lines are skipped and not counted).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from schemas.errors import InputError
from schemas.times import parse_duration, zone

_GROUP = ["sensor", "source", "belief_time", "belief_horizon", "unit", "cumulative_probability"]
_TEXT_COLUMNS = {"sensor": str, "source": str, "unit": str}


@dataclass(frozen=True)
class Reading:
    """One message to publish: its key and the record of its schema."""

    key: str
    schema: str
    record: dict[str, Any]
    #: The data row (from 1 after the header) of the message's first value.
    row: int = 0

    @property
    def count(self) -> int:
        """How many beliefs the message carries."""
        return len(self.record["values"]) if self.schema == "BeliefBatch" else 1


def _first(mask: pd.Series | np.ndarray) -> int:
    """Position of the first True."""
    return int(np.flatnonzero(np.asarray(mask))[0])


_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})$"


def _parse_times(
    col: pd.Series,
    name: str,
    optional: bool = False,
    tz: str | None = None,
    groups: pd.Series | None = None,
) -> pd.Series:
    """Aware UTC times; naive ones are read in ``tz`` (see :func:`_localize`), else refused."""
    missing = col.isna()
    if not optional and missing.any():
        row = _first(missing)
        raise InputError(
            f"row {row + 1} has no time; every row needs one (ISO 8601 with an offset)", name
        )
    text = col.astype(str).str.strip()
    naive = ~missing & ~text.str.contains(_OFFSET, regex=True)
    if naive.any() and tz is None:
        row = _first(naive)
        raise InputError(
            f"time {text.iloc[row]!r} (row {row + 1}) has no UTC offset; write ISO 8601 with "
            "an offset, e.g. 2026-01-01T00:00:00+01:00 or ...Z, or pass --timezone to read "
            "times without an offset as local times of that zone",
            name,
        )
    out = _to_datetime(text.mask(missing | naive), name, utc=True)
    if naive.any():
        local = _to_datetime(text[naive], name, utc=False)
        by = groups[naive] if groups is not None else pd.Series(0, index=local.index)
        for _, part in local.groupby(by, sort=False):
            out[part.index] = _localize(part, text, tz, name)  # type: ignore[arg-type]
    return out


def _to_datetime(text: pd.Series, name: str, utc: bool) -> pd.Series:
    try:
        return pd.to_datetime(text, utc=utc, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        # Find the first unreadable time, to name its row (rows are numbered from 1).
        parsed = pd.to_datetime(text, utc=utc, format="ISO8601", errors="coerce")
        bad = parsed.isna() & text.notna()
        label = bad.idxmax() if bad.any() else text.index[0]
        raise InputError(
            f"time {text[label]!r} (row {label + 1}) is not an ISO 8601 date and time; "
            "write e.g. 2026-01-01T00:00:00+01:00",
            name,
        ) from None


def _localize(local: pd.Series, text: pd.Series, tz: str, name: str) -> pd.Series:
    """Naive times of one sensor, in file order, read as local times of ``tz``, in UTC.

    Where clocks go back, a local time occurs twice. Rows that repeat the
    hour in order (as a meter's export across that night does: 02:00 ...
    02:45, then 02:00 ... 02:45 again) are told apart by their order: the
    first run is summer time, the second winter time. An ambiguous time that
    its rows cannot settle (it appears once, or out of order) is an error
    naming the row, as is a time that does not exist (clocks go forward).
    """
    idx = pd.DatetimeIndex(local)
    try:
        return pd.Series(
            idx.tz_localize(tz, ambiguous="infer", nonexistent="raise").tz_convert("UTC"),
            index=local.index,
        )
    except ValueError:
        pass
    gap = idx.tz_localize(tz, ambiguous=True, nonexistent="NaT").isna()
    unsettled = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").isna()
    label = local.index[int(np.flatnonzero(gap | unsettled)[0])]
    shown = text[label]
    if gap[local.index.get_loc(label)]:
        raise InputError(
            f"time {shown!r} (row {label + 1}) does not exist in {tz}: clocks go forward "
            "that night; correct the time, or write it with its UTC offset",
            name,
        )
    t = local[label]
    summer, winter = (
        pd.Timestamp(t).tz_localize(tz, ambiguous=flag).isoformat() for flag in (True, False)
    )
    raise InputError(
        f"time {shown!r} (row {label + 1}) occurs twice in {tz} (clocks go back that night) "
        "and the rows around it do not tell which is meant; write it with its UTC offset "
        f"({summer} or {winter})",
        name,
    )


def _parse_numbers(col: pd.Series, name: str, required: bool) -> pd.Series:
    """Finite floats; empty cells stay NaN unless ``required``. Errors name the row."""
    values = pd.to_numeric(col, errors="coerce").astype(float)
    missing = col.isna()
    bad = ~np.isfinite(values.to_numpy()) & (required | ~missing.to_numpy())
    if bad.any():
        row = _first(bad)
        cell = col.iloc[row]
        shown = repr(cell) if isinstance(cell, str) else repr(str(float(cell)))
        if missing.iloc[row]:
            msg = f"row {row + 1} has no value; fill in a number or remove the row"
        elif np.isnan(values.iloc[row]):
            msg = (
                f"{shown} (row {row + 1}) is not a number; write a decimal number "
                "with a dot, e.g. 12.5"
            )
        else:
            msg = f"{shown} (row {row + 1}) is not a finite number; write a decimal number"
        raise InputError(msg, name)
    return values


def _parse_durations(col: pd.Series, name: str) -> list[timedelta | None]:
    """ISO 8601 durations per row (None for empty cells); errors name the row."""
    out: list[timedelta | None] = []
    for i, v in enumerate(col):
        if pd.isna(v):
            out.append(None)
            continue
        try:
            out.append(parse_duration(v, name))
        except InputError as exc:
            raise InputError(f"row {i + 1}: {str(exc).removeprefix(name + ': ')}", name) from None
    return out


def _event_resolutions(col: pd.Series) -> list[timedelta]:
    """The ``event_resolution`` of every row: filled in, zero or positive."""
    name = "event_resolution"
    out: list[timedelta] = []
    for i, d in enumerate(_parse_durations(col, name)):
        if d is None:
            raise InputError(
                f"row {i + 1} has no event resolution; fill it in (PT0M for instantaneous "
                "values), or remove the column and pass --resolution",
                name,
            )
        if d < timedelta(0):
            raise InputError(
                f"row {i + 1}: the resolution {col.iloc[i]!r} is negative; write a positive "
                "duration such as PT15M, or PT0M for instantaneous values",
                name,
            )
        out.append(d)
    return out


def _text_of(source: str | Path | IO[str]) -> str:
    try:
        text = (
            Path(source).read_text(encoding="utf-8")
            if isinstance(source, str | Path)
            else source.read()
        )
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the file is not UTF-8 text (byte {exc.start}); save the CSV as UTF-8", "file"
        ) from None
    return text.removeprefix("\ufeff")  # a byte-order mark, as some spreadsheets write


def _malformed(text: str, header: list[str], delimiter: str = ",") -> InputError:
    """Say which row of ``text`` the CSV parser could not read, and why."""
    reader = csv.reader(io.StringIO(text), strict=True, delimiter=delimiter)
    row = 0
    try:
        next(reader, None)
        for fields in reader:
            if not fields or fields == [""]:
                continue  # a blank line, which the parser skips
            row += 1
            if len(fields) > len(header):
                return InputError(
                    f"row {row} has {len(fields)} values but the header names "
                    f"{len(header)} columns ({', '.join(header)}); remove the extra value "
                    f"{fields[len(header)]!r}, name its column in the header, or put quotes "
                    f"around values that contain the delimiter {delimiter!r}",
                    f"column {len(header) + 1}",
                )
    except csv.Error as exc:
        return InputError(
            f"row {row + 1} cannot be read ({exc}); close every opening quote and put "
            "quotes around a whole value only",
            f"row {row + 1}",
        )
    return InputError("the CSV cannot be read; check its quotes and commas", "file")


def _header(text: str, delimiter: str = ",") -> list[str]:
    try:
        header = next(csv.reader(io.StringIO(text.split("\n", 1)[0]), delimiter=delimiter), [])
    except csv.Error:
        header = []
    header = [h.strip() for h in header]
    if not any(header):
        raise InputError(
            "the CSV is empty; its first line must be a header naming the columns, at "
            "least event_start and event_value",
            "file",
        )
    for i, name in enumerate(header):
        if name and name in header[:i]:
            raise InputError(f"column {name!r} appears twice in the header; keep one", name)
    return header


@dataclass(frozen=True)
class ColumnMap:
    """Which CSV columns hold the event starts, the values and the belief times.

    Defaults are the project's own column names; ``flexstream publish`` sets
    them with ``--datetime-column``, ``--value-column`` and
    ``--belief-time-column``. Errors name the columns as the CSV does.
    """

    event_start: str = "event_start"
    event_value: str = "event_value"
    belief_time: str | None = None

    def _mapped(self) -> dict[str, tuple[str, str]]:
        """Our column -> (the CSV's column, the option that names it)."""
        out = {
            "event_start": (self.event_start.strip(), "--datetime-column"),
            "event_value": (self.event_value.strip(), "--value-column"),
        }
        if self.belief_time is not None:
            out["belief_time"] = (self.belief_time.strip(), "--belief-time-column")
        return out

    def apply(self, df: pd.DataFrame, delimiter: str) -> dict[str, str]:
        """Rename ``df``'s mapped columns to ours; return ours -> the CSV's name, for errors."""
        mapped = self._mapped()
        seen: dict[str, str] = {}
        for ours, (theirs, option) in mapped.items():
            if theirs in seen:
                raise InputError(
                    f"{option} and {seen[theirs]} both name the column {theirs!r}; "
                    "each must name a column of its own",
                    option,
                )
            seen[theirs] = option
            if theirs not in df.columns:
                raise InputError(
                    _missing_column(ours, theirs, option, list(df.columns), delimiter), theirs
                )
            if theirs != ours and ours in df.columns:
                raise InputError(
                    f"the CSV has a column {ours!r} besides {theirs!r}, which {option} names "
                    f"as the {ours} column; remove or rename {ours!r}, or leave {option} out",
                    ours,
                )
        rename = {theirs: ours for ours, (theirs, _) in mapped.items()}
        df.columns = [rename.get(c, c) for c in df.columns]
        return {"belief_time": "belief_time", **{k: v for k, (v, _) in mapped.items()}}


def _missing_column(ours: str, theirs: str, option: str, header: list[str], delimiter: str) -> str:
    names = ", ".join(repr(h) for h in header)
    what = {"event_start": "event starts", "event_value": "values", "belief_time": "belief times"}
    if len(header) == 1 and delimiter == ",":
        hint = "; if its values are separated by ';' or tabs, pass --delimiter"
    else:
        hint = ""
    if theirs == ours:
        return (
            f"the CSV needs an {ours!r} column (header row), or name the column of "
            f"{what[ours]} with {option}; the header names {names}{hint}"
        )
    return f"the CSV has no column {theirs!r} ({option}); the header names {names}{hint}"


def _delimiter(delimiter: str) -> str:
    d = {"tab": "\t", "\\t": "\t"}.get(delimiter, delimiter)
    if len(d) != 1 or d in '"\r\n':
        raise InputError(
            f"{delimiter!r} cannot separate values; give one character such as ',' or ';' "
            "(or 'tab')",
            "--delimiter",
        )
    return d


def read_csv(
    source: str | Path | IO[str],
    sensor: str | None = None,
    default_source: str = "csv",
    resolution: timedelta | None = None,
    unit: str | None = None,
    max_batch: int = 2000,
    belief_time: datetime | None = None,
    belief_horizon: timedelta | None = None,
    columns: ColumnMap = ColumnMap(),  # noqa: B008 - frozen dataclass
    timezone: str | None = None,
    delimiter: str = ",",
) -> list[Reading]:
    """Read a readings CSV into messages (see the module docstring for the columns).

    ``belief_time`` (aware) or ``belief_horizon`` (before the event end) is given
    to rows that have neither in their own columns; not both. ``columns`` names
    the CSV's columns of event starts, values and belief times where they are
    not ``event_start``, ``event_value`` and ``belief_time``. ``timezone`` (an
    IANA name) reads times without an offset as local times there; without it
    they are refused. ``delimiter`` separates the values (one character).
    Raises :class:`InputError` naming the column and row of the first problem.
    """
    delimiter = _delimiter(delimiter)
    if timezone is not None:
        zone(timezone, "--timezone")
    if belief_time is not None and belief_horizon is not None:
        raise InputError("give a belief time or a belief horizon, not both", "belief_horizon")
    if belief_time is not None and belief_time.tzinfo is None:
        raise InputError("the default belief time needs a UTC offset", "belief_time")
    if resolution is not None and resolution < timedelta(0):
        raise InputError(
            f"{resolution} is negative; give a positive duration such as PT15M "
            "(PT0M for instantaneous values)",
            "resolution",
        )
    text = _text_of(source)
    header = _header(text, delimiter)
    try:
        # Only empty cells are missing: 'NA', 'nan' or 'null' are reported, not guessed at.
        df = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=_TEXT_COLUMNS,
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.ParserError:
        raise _malformed(text, header, delimiter) from None
    if not isinstance(df.index, pd.RangeIndex):
        # Every row had one value more than the header: pandas took the first as an index.
        raise _malformed(text, header, delimiter)
    df.columns = [str(c).strip() for c in df.columns]
    label = columns.apply(df, delimiter)
    if "sensor" not in df.columns:
        if not sensor:
            raise InputError("the CSV has no 'sensor' column; add one or pass --sensor", "sensor")
        df["sensor"] = sensor
    elif df["sensor"].isna().any():
        row = _first(df["sensor"].isna())
        raise InputError(f"row {row + 1} has no sensor; fill it in", "sensor")
    sensors = df["sensor"]
    df["event_start"] = _parse_times(
        df["event_start"], label["event_start"], tz=timezone, groups=sensors
    )
    if "belief_time" in df.columns:
        df["belief_time"] = _parse_times(
            df["belief_time"], label["belief_time"], optional=True, tz=timezone, groups=sensors
        )
    else:
        df["belief_time"] = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns, UTC]")
    if "belief_horizon" in df.columns:
        # Object dtype keeps blanks as None next to whole milliseconds (not NaN floats).
        horizons = _parse_durations(df["belief_horizon"], "belief_horizon")
        df["belief_horizon"] = pd.Series(
            [None if h is None else h // timedelta(milliseconds=1) for h in horizons],
            index=df.index,
            dtype=object,
        )
    else:
        df["belief_horizon"] = None
    df["source"] = df["source"].fillna(default_source) if "source" in df else default_source
    df["unit"] = df["unit"] if "unit" in df else unit
    if "cumulative_probability" in df:
        cp = _parse_numbers(df["cumulative_probability"], "cumulative_probability", False)
        outside = (cp < 0) | (cp > 1)
        if outside.any():
            row = _first(outside)
            raise InputError(
                f"{cp.iloc[row]} (row {row + 1}) is outside [0, 1]; write a probability "
                "between 0 and 1 (0.5 for a deterministic value)",
                "cumulative_probability",
            )
        df["cumulative_probability"] = cp.fillna(0.5)
    else:
        df["cumulative_probability"] = 0.5
    neither = df["belief_time"].isna() & df["belief_horizon"].isna()
    if belief_time is not None:
        df["belief_time"] = df["belief_time"].mask(
            neither, pd.Timestamp(belief_time).tz_convert("UTC")
        )
    elif belief_horizon is not None:
        df["belief_horizon"] = df["belief_horizon"].mask(
            neither, belief_horizon // timedelta(milliseconds=1)
        )
    res_col = _event_resolutions(df["event_resolution"]) if "event_resolution" in df else None
    df["event_value"] = _parse_numbers(df["event_value"], label["event_value"], True)
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
        elif j < n and keys[j] == keys[i] and starts_us[j] > starts_us[i]:
            # Inferred from the next row; a repeated or earlier start tells nothing.
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
        yield _reading(df.iloc[i], i, step, values[i:j])
        cut = j - i == max_batch and j < n and keys[j] == keys[i]
        carry = step if cut and starts_us[j] - starts_us[j - 1] == step else None
        i = j


def _reading(row: pd.Series, position: int, step_us: int | None, values: np.ndarray) -> Reading:
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
        return Reading(sensor, "BeliefBatch", rec, position + 1)
    if step_us is None:
        raise InputError(
            f"cannot tell the event resolution of the single reading of {sensor!r} at "
            f"{start.isoformat()} (row {position + 1}); add an event_resolution column or "
            "pass --resolution",
            "event_resolution",
        )
    rec = {
        "sensor": sensor,
        "event_start": start,
        "event_resolution_ms": step_us // 1000,
        "event_value": float(values[0]),
        **common,
    }
    return Reading(sensor, "Belief", rec, position + 1)
