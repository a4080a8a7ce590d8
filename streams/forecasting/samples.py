"""A measured PV series to test and benchmark forecasters on: pvlib's shipped weather year.

pvlib ships the typical meteorological year (TMY3) of Greensboro, North
Carolina (``723170TYA.CSV``): hourly measured irradiance (GHI, DNI, DHI),
temperature and wind, each month taken from a measured year. Turned into the
AC-side power of a 5 kWp south-facing array (plane-of-array irradiance with
pvlib's transposition, SAPM cell temperature, PVWatts DC model, 96 % inverter
efficiency), it is a real weather-driven PV series: clear days, cloudy days,
seasons. Power is negative (production, the project's sign convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

from schemas.forecaster import Site

#: Greensboro (from the file's header), panels tilted 30 degrees facing south.
SITE = Site(latitude=36.1, longitude=-79.95, altitude=273.0, tilt=30.0, azimuth=180.0)
PEAK_KW = 5.0


@dataclass(frozen=True)
class Series:
    """A regular series: event starts (µs, UTC), values, step (µs)."""

    event_start_us: np.ndarray
    values: np.ndarray
    step_us: int


@lru_cache(maxsize=1)
def pvlib_pv_series(year: int = 2021) -> Series:
    """Hourly PV power (kW, negative) derived from pvlib's measured TMY3 data, one year."""
    from pvlib import irradiance, pvsystem, temperature
    from pvlib.iotools import read_tmy3
    from pvlib.location import Location

    path = resources.files("pvlib").joinpath("data", "723170TYA.CSV")
    data, _ = read_tmy3(str(path), coerce_year=year, map_variables=True)
    data = data.tz_convert("UTC").sort_index()
    # TMY3 stamps each hour at its end; the event starts an hour earlier.
    starts = data.index - pd.Timedelta(hours=1)
    mid = starts + pd.Timedelta(minutes=30)
    loc = Location(SITE.latitude, SITE.longitude, tz="UTC", altitude=SITE.altitude)
    sun = loc.get_solarposition(mid)
    poa = irradiance.get_total_irradiance(
        SITE.tilt,
        SITE.azimuth,
        sun["apparent_zenith"].to_numpy(),
        sun["azimuth"].to_numpy(),
        data["dni"].to_numpy(),
        data["ghi"].to_numpy(),
        data["dhi"].to_numpy(),
    )["poa_global"]
    poa = np.nan_to_num(np.asarray(poa, dtype=float), nan=0.0).clip(min=0.0)
    params = temperature.TEMPERATURE_MODEL_PARAMETERS["sapm"]["open_rack_glass_glass"]
    cell = temperature.sapm_cell(
        poa, data["temp_air"].to_numpy(), data["wind_speed"].to_numpy(), **params
    )
    dc = pvsystem.pvwatts_dc(poa, cell, PEAK_KW, -0.004)
    kw = -np.clip(np.asarray(dc, dtype=float) * 0.96, 0.0, PEAK_KW)
    us = starts.as_unit("us").asi8.astype(np.int64)
    order = np.argsort(us)
    return Series(us[order], kw[order], 3_600_000_000)
