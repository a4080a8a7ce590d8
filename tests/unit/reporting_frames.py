"""Builders of beliefs frames for the reporting tests (imported by test_reporting_*)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

AMS = ZoneInfo("Europe/Amsterdam")


def beliefs(
    start: str | datetime,
    values,
    freq: str = "1h",
    source: str = "meter",
    belief_lag: str = "0h",
    cumulative_probability: float = 0.5,
) -> pd.DataFrame:
    """One belief per event from ``start`` every ``freq``, believed ``belief_lag`` after the end."""
    values = np.asarray(values, dtype=float)
    idx = pd.date_range(pd.Timestamp(start).tz_convert("UTC"), periods=len(values), freq=freq)
    res = pd.Timedelta(freq)
    return pd.DataFrame(
        {
            "event_start": idx,
            "event_resolution": res,
            "belief_time": idx + res + pd.Timedelta(belief_lag),
            "source": source,
            "cumulative_probability": cumulative_probability,
            "event_value": values,
        }
    )


def local_day(year: int, month: int, day: int) -> tuple[datetime, datetime]:
    """Start and end of a local Amsterdam calendar day."""
    start = datetime(year, month, day, tzinfo=AMS)
    end = datetime.combine(start.date() + timedelta(days=1), start.time(), tzinfo=AMS)
    return start, end


def day_hours(year: int, month: int, day: int) -> int:
    """Length in hours of a local Amsterdam day (23, 24 or 25)."""
    start, end = local_day(year, month, day)
    return int((end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() // 3600)
