"""Check a beliefs frame and reduce it to one current value per event.

The frame contract is documented in :mod:`streams.reports.reporters.base`. The
reduction is deterministic and independent of row order:

1. Per ``(event_start, source)``: keep the most recent ``belief_time``. Among
   beliefs with that time, keep the ``cumulative_probability`` closest to 0.5
   (ties: the lower one), so a probabilistic belief contributes its median-most
   value. Remaining exact duplicates (the same message delivered twice) are
   averaged.
2. Per ``event_start``, choose one source:
   - when the caller names ``sources``, only those count, and the first source
     in that list that has a belief for the event wins (so ``[meter,
     forecaster]`` means "measurements, else the forecast");
   - otherwise the source with the most recent belief wins (a correction by
     any source supersedes), ties broken by the smallest source name.

A NaN ``event_value`` that survives this reduction is a belief that the value
is unknown; it makes the time slots it covers incomplete.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from schemas.errors import InputError

#: Columns a beliefs frame must have (extra columns are ignored).
BELIEF_COLUMNS: tuple[str, ...] = (
    "event_start",
    "event_resolution",
    "belief_time",
    "source",
    "cumulative_probability",
    "event_value",
)


def _utc_ns(values: pd.Series, field: str) -> pd.Series:
    """Return tz-aware datetimes converted to UTC at nanosecond unit; refuse naive ones."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        try:
            converted = pd.to_datetime(values, utc=False)
        except (TypeError, ValueError) as exc:
            raise InputError(f"cannot read as datetimes ({exc})", field) from None
        if not isinstance(converted.dtype, pd.DatetimeTZDtype):
            raise InputError("datetimes must be timezone-aware (UTC)", field)
        values = converted
    return values.dt.tz_convert("UTC").dt.as_unit("ns")


def check_frame(frame: pd.DataFrame, field: str) -> pd.DataFrame:
    """Validate a beliefs frame and return a normalised copy.

    Times become tz-aware UTC (ns), ``event_resolution`` a timedelta (ns),
    ``event_value`` and ``cumulative_probability`` floats, ``source`` strings.
    ``field`` names the input (e.g. ``inputs.pv``) in error messages.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InputError(
            f"expected a pandas DataFrame of beliefs, got {type(frame).__name__}", field
        )
    missing = [c for c in BELIEF_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"beliefs frame lacks column(s) {', '.join(missing)}; "
            f"it needs {', '.join(BELIEF_COLUMNS)}",
            field,
        )
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame(
        {
            "event_start": _utc_ns(frame["event_start"], f"{field}.event_start"),
            "belief_time": _utc_ns(frame["belief_time"], f"{field}.belief_time"),
        }
    )
    try:
        res = pd.to_timedelta(frame["event_resolution"].to_numpy()).as_unit("ns")
    except (TypeError, ValueError) as exc:
        raise InputError(f"cannot read as durations ({exc})", f"{field}.event_resolution") from None
    if len(res) and (res < pd.Timedelta(0)).any():
        raise InputError("durations must not be negative", f"{field}.event_resolution")
    out["event_resolution"] = res
    out["source"] = frame["source"].astype(str).to_numpy()
    for col in ("cumulative_probability", "event_value"):
        try:
            out[col] = pd.to_numeric(frame[col].to_numpy(), errors="raise").astype(float)
        except (TypeError, ValueError) as exc:
            raise InputError(f"expected numbers ({exc})", f"{field}.{col}") from None
    if out[["event_start", "belief_time"]].isna().any().any():
        raise InputError("event_start and belief_time must not be missing", field)
    return out


def current_values(
    frame: pd.DataFrame, field: str, sources: Sequence[str] | None = None
) -> pd.DataFrame:
    """Reduce a beliefs frame to one row per event (see the module docstring for the rule).

    Returns columns ``event_start``, ``event_end`` (UTC), ``event_value`` (float)
    and ``source``, sorted by ``event_start``.
    """
    df = check_frame(frame, field)
    if sources is not None:
        df = df[df["source"].isin([str(s) for s in sources])]
    if df["event_start"].is_unique:
        # One belief per event (a meter's series): it is the current value, nothing to rank.
        return _one_per_event(df.sort_values("event_start", kind="stable"))
    return ranked_values(df, sources)


def _one_per_event(chosen: pd.DataFrame) -> pd.DataFrame:
    """The result frame of :func:`current_values` from one chosen row per event, in order."""
    chosen = chosen.reset_index(drop=True)
    return pd.DataFrame(
        {
            "event_start": chosen["event_start"],
            "event_end": chosen["event_start"] + chosen["event_resolution"],
            "event_value": chosen["event_value"].astype(float),
            "source": chosen["source"].astype(object),
        }
    )


def ranked_values(df: pd.DataFrame, sources: Sequence[str] | None = None) -> pd.DataFrame:
    """:func:`current_values` of a checked frame by the full rule (any number of beliefs)."""
    if df.empty:
        return _one_per_event(df)
    df = df.assign(_dist=(df["cumulative_probability"] - 0.5).abs())
    key = ["event_start", "source"]
    order = ["belief_time", "_dist", "cumulative_probability"]
    df = df.sort_values(key + order, ascending=[True, True, False, True, True], kind="stable")
    best = df.groupby(key, sort=False).head(1)[key + order]
    tied = df.merge(best, on=key + order, how="inner")
    per_source = tied.groupby(key, sort=False, as_index=False).agg(
        event_value=("event_value", "mean"),
        event_resolution=("event_resolution", "max"),
        belief_time=("belief_time", "first"),
    )
    if sources is not None:
        priority = {str(s): i for i, s in enumerate(sources)}
        per_source["_rank"] = per_source["source"].map(priority).astype(int)
        per_source = per_source.sort_values(["event_start", "_rank"], kind="stable")
    else:
        per_source = per_source.sort_values(
            ["event_start", "belief_time", "source"], ascending=[True, False, True], kind="stable"
        )
    chosen = per_source.groupby("event_start", sort=True).head(1)
    return _one_per_event(chosen.sort_values("event_start", kind="stable"))


def as_ns(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Return UTC datetimes as int64 nanoseconds since the epoch."""
    index = pd.DatetimeIndex(values)
    return index.tz_convert("UTC").as_unit("ns").asi8
