"""A site's view of the beliefs: its own state first, then the shared state (pure).

With site partitions the scheduling worker holds two belief states: the
state of its sites, whose keys name the site and the sensor (:func:`site_key`),
and the shared state (sensors every worker holds whole, by plain sensor name).
:class:`SiteLookup` is the :class:`~streams.scheduling.inputs.Lookup` of one
site's requests: a sensor is looked up in the site's state and, where that
holds nothing for the span asked, in the shared state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import pandas as pd

#: Between a site's name and a sensor's in the site state's keys (in no registered name).
SEP = "\x1f"


def site_key(site: str, sensor: str) -> str:
    """The name ``sensor`` has in the site state of ``site``."""
    return f"{site}{SEP}{sensor}"


def split_key(key: str) -> tuple[str, str]:
    """(site, sensor) of a site-state name; a plain sensor name gives an empty site."""
    site, sep, sensor = key.partition(SEP)
    return (site, sensor) if sep else ("", key)


class States(Protocol):
    """What :class:`SiteLookup` reads of a belief state (a :class:`BeliefState`)."""

    def series(self, sensor: str, start: datetime, end: datetime, **kw: Any) -> pd.Series:
        """Current values of events overlapping [start, end)."""
        ...

    def latest_at(self, sensor: str, at: datetime) -> tuple[datetime, float] | None:
        """The most recent event at or before ``at``."""
        ...


class SiteLookup:
    """The beliefs one site's requests read: the site's state, then the shared state."""

    def __init__(self, site: str, own: States, shared: States) -> None:
        self.site = site
        self.own = own
        self.shared = shared

    def series(self, sensor: str, start: datetime, end: datetime, **kw: Any) -> pd.Series:
        """The site's series of ``sensor`` if it holds any of the span, else the shared one."""
        s = self.own.series(site_key(self.site, sensor), start, end, **kw)
        if s.empty:
            s = self.shared.series(sensor, start, end, **kw)
        s.name = sensor
        return s

    def latest_at(self, sensor: str, at: datetime) -> tuple[datetime, float] | None:
        """The most recent event of ``sensor`` at or before ``at``: the site's, else shared."""
        got = self.own.latest_at(site_key(self.site, sensor), at)
        return got if got is not None else self.shared.latest_at(sensor, at)
