"""Calendar features of event times: local time of day, day of week and year, holidays.

Known in advance for any event, so they never look ahead. Local time is the
sensor's timezone (a load follows the local clock, across daylight saving);
public holidays come from the ``holidays`` package (country and optional
subdivision), counted as local dates.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd


@lru_cache(maxsize=32)
def holiday_dates(country: str, subdivision: str | None, first: int, last: int) -> np.ndarray:
    """Public holidays of ``country`` in the years ``first``..``last`` as datetime64[D]."""
    import holidays

    days = holidays.country_holidays(country, subdiv=subdivision, years=range(first, last + 1))
    return np.array(sorted(days), dtype="datetime64[D]")


def calendar_features(
    event_start_us: np.ndarray,
    timezone: str,
    country: str | None = None,
    subdivision: str | None = None,
) -> dict[str, np.ndarray]:
    """Calendar features per event start, in the local time of ``timezone``.

    ``hour`` (fractional), ``weekday`` (0 is Monday), ``yearday`` and, with a
    ``country``, ``holiday`` (1.0 on a public holiday, else 0.0).
    """
    idx = pd.DatetimeIndex(pd.to_datetime(np.asarray(event_start_us), unit="us", utc=True))
    local = idx.tz_convert(timezone)
    hour = local.hour.to_numpy() + local.minute.to_numpy() / 60.0
    weekday = local.day_of_week.to_numpy().astype(np.float64)
    out = {
        "hour": hour.astype(np.float64),
        "weekday": weekday,
        "yearday": local.day_of_year.to_numpy().astype(np.float64),
    }
    if country:
        dates = local.tz_localize(None).to_numpy().astype("datetime64[D]")
        if len(dates):
            years = local.year.to_numpy()
            days = holiday_dates(country, subdivision, int(years.min()), int(years.max()))
            out["holiday"] = np.isin(dates, days).astype(np.float64)
        else:
            out["holiday"] = np.empty(0)
    return out
