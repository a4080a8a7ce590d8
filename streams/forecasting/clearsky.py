"""The clear-sky profile of a PV site: irradiance on the panels' plane under a clear sky.

Computed with pvlib: the sun's position at each event's midpoint, the Ineichen
clear-sky model (Linke turbidity from pvlib's monthly climatology, looked up once
per site), transposed to the plane of the panels (tilt, azimuth). Known in
advance for any event, it tells a model when the sun can shine and how strongly;
the model learns from the history how much of it reaches the meter.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from schemas.forecaster import Site


@lru_cache(maxsize=16)
def _monthly_turbidity(latitude: float, longitude: float) -> np.ndarray:
    """Linke turbidity per calendar month (12 values) at the site."""
    from pvlib.clearsky import lookup_linke_turbidity

    mid_months = pd.date_range("2021-01-15", periods=12, freq="MS", tz="UTC") + pd.Timedelta(
        days=14
    )
    return lookup_linke_turbidity(mid_months, latitude, longitude).to_numpy()


def clear_sky_poa(site: Site, event_start_us: np.ndarray, resolution_s: int) -> np.ndarray:
    """Clear-sky plane-of-array irradiance (W/m²) at the midpoint of each event."""
    from pvlib import irradiance
    from pvlib.location import Location

    starts = np.asarray(event_start_us, dtype=np.int64)
    if not len(starts):
        return np.empty(0)
    times = pd.DatetimeIndex(pd.to_datetime(starts + resolution_s * 500_000, unit="us", utc=True))
    loc = Location(site.latitude, site.longitude, tz="UTC", altitude=site.altitude)
    solpos = loc.get_solarposition(times)
    turbidity = _monthly_turbidity(site.latitude, site.longitude)[times.month.to_numpy() - 1]
    cs = loc.get_clearsky(
        times,
        model="ineichen",
        solar_position=solpos,
        linke_turbidity=pd.Series(turbidity, index=times),
    )
    poa = irradiance.get_total_irradiance(
        site.tilt,
        site.azimuth,
        solpos["apparent_zenith"],
        solpos["azimuth"],
        cs["dni"],
        cs["ghi"],
        cs["dhi"],
    )["poa_global"]
    return np.nan_to_num(poa.to_numpy(dtype=np.float64), nan=0.0).clip(min=0.0)
