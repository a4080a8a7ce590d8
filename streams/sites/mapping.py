"""Sites and the sensors they read: the registry's sensor-to-site mapping (pure).

A site is a root asset (one without a parent; :func:`~schemas.assets.site_of`).
Every asset belongs to the site at the top of its parents; a request for an
asset (or its devices) is keyed by that site, and so are the beliefs of the
sensors the site's assets reference (device powers, states of charge,
inflexible devices, capacities given as sensors, prices), so one scheduling
worker holds a site's requests with every sensor they read.

Shared sensors are held once per scheduling worker instead of once per site:
the sensors of flex-context price fields (day-ahead prices, CO2 intensity),
and any sensor referenced by more than ``shared_above`` sites.

:func:`~connectors.kafka.site_partition` is the one partitioner of the
site-keyed topics; the SDK, the re-planner and the repartitioning of the
readings all use it (never a client library's default partitioner: they differ
between clients).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from connectors.kafka import site_partition
from schemas.assets import PRICE_FIELDS, Asset, sensor_refs, site_of

__all__ = ["SiteMap", "asset_sensors", "build_site_map", "site_of", "site_partition"]


def asset_sensors(asset: Asset) -> set[str]:
    """Every sensor ``asset`` references: its devices, flex-model and flex-context fields."""
    return set(asset.devices) | sensor_refs(asset.flex_model) | sensor_refs(asset.flex_context)


@dataclass(frozen=True)
class SiteMap:
    """Where each sensor's beliefs go: the sites that read it, or the shared state."""

    #: Sensor -> the sites that reference it (shared sensors left out).
    sites: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: Sensors held whole by every scheduling worker.
    shared: frozenset[str] = frozenset()
    #: Asset -> its site.
    asset_sites: Mapping[str, str] = field(default_factory=dict)

    def sites_of(self, sensor: str) -> frozenset[str]:
        """The sites whose state holds ``sensor`` (none for a shared or unreferenced sensor)."""
        return self.sites.get(sensor, frozenset())

    def site_of(self, asset: str) -> str:
        """The site of ``asset`` (an unregistered asset is its own site)."""
        return self.asset_sites.get(asset, asset)


def build_site_map(assets: Mapping[str, Asset], shared_above: int) -> SiteMap:
    """The mapping of the registry's ``assets`` (see the module docstring)."""
    by_sensor: dict[str, set[str]] = {}
    shared: set[str] = set()
    asset_sites = {name: site_of(name, assets) for name in assets}
    for name, asset in assets.items():
        site = asset_sites[name]
        for sensor in asset_sensors(asset):
            by_sensor.setdefault(sensor, set()).add(site)
        for f in PRICE_FIELDS:
            shared |= sensor_refs(asset.flex_context.get(f))
    shared |= {s for s, sites in by_sensor.items() if len(sites) > shared_above}
    return SiteMap(
        sites={s: frozenset(v) for s, v in by_sensor.items() if s not in shared},
        shared=frozenset(shared),
        asset_sites=asset_sites,
    )
