"""Sites of assets, the registry's sensor-to-site mapping and the site partitioner."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.kafka import site_partition, site_topic_partitions, topic_specs
from schemas.assets import Asset
from streams.sites.mapping import asset_sensors, build_site_map, site_of


def asset(
    name: str, parent: str | None = None, price: str | None = "da-price", context=(), **fm
) -> Asset:
    doc = {
        "name": name,
        "parent": parent,
        "flex-model": {"sensor": f"{name}-power", "soc-at-start": {"sensor": f"{name}-soc"}, **fm},
        "flex-context": {"consumption-price": {"sensor": price}} if price else {},
    }
    doc["flex-context"].update(context)
    return Asset.model_validate(doc)


def test_a_site_is_the_top_of_the_parents():
    assets = {a.name: a for a in (asset("home"), asset("ev", "garage"), asset("garage", "home"))}
    assert [site_of(n, assets) for n in ("home", "garage", "ev")] == ["home"] * 3


def test_an_unregistered_asset_or_parent_ends_the_climb():
    assets = {"ev": asset("ev", "gone")}
    assert site_of("ev", assets) == "ev"
    assert site_of("nowhere", assets) == "nowhere"


def test_a_loop_of_parents_gives_every_asset_on_it_the_same_site():
    assets = {a.name: a for a in (asset("b", "c"), asset("c", "b"), asset("a", "b"))}
    assert {site_of(n, assets) for n in assets} == {"b"}


def test_an_assets_sensors_are_its_devices_and_every_reference():
    a = asset("home", **{"power-capacity": {"sensor": "cap"}})
    assert asset_sensors(a) == {"home-power", "home-soc", "cap", "da-price"}


def test_price_sensors_are_shared_the_rest_go_to_their_sites():
    assets = {a.name: a for a in (asset("home"), asset("ev", "home", price=None), asset("shop"))}
    m = build_site_map(assets, shared_above=10)
    assert m.shared == {"da-price"}
    assert m.sites_of("ev-soc") == {"home"} and m.sites_of("shop-power") == {"shop"}
    assert m.sites_of("da-price") == frozenset() and m.site_of("ev") == "home"


def test_a_sensor_of_more_sites_than_the_threshold_is_shared():
    assets = {
        n: asset(n, price=None, context={"inflexible-device-sensors": [{"sensor": "feeder"}]})
        for n in ("a", "b", "c")
    }
    assert "feeder" in build_site_map(assets, shared_above=2).shared
    assert build_site_map(assets, shared_above=3).sites_of("feeder") == {"a", "b", "c"}


names = st.text("abcdefgh", min_size=1, max_size=3)


@given(st.dictionaries(names, st.one_of(st.none(), names), max_size=8), st.integers(1, 5))
def test_every_referenced_sensor_is_shared_or_held_by_its_assets_site(parents, above):
    assets = {n: asset(n, p if p != n else None) for n, p in parents.items()}
    m = build_site_map(assets, shared_above=above)
    for name, a in assets.items():
        for sensor in asset_sensors(a):
            assert sensor in m.shared or site_of(name, assets) in m.sites_of(sensor)
            assert not (sensor in m.shared and m.sites_of(sensor))
    # A site's assets all land in one partition of every partition count.
    for p in (1, 3, 7):
        for name in assets:
            assert site_partition(m.site_of(name), p) == site_partition(site_of(name, assets), p)


@given(st.text(max_size=40), st.integers(1, 64))
def test_the_site_partition_is_in_range_and_the_same_every_time(site, partitions):
    p = site_partition(site, partitions)
    assert 0 <= p < partitions and p == site_partition(site, partitions)


def test_no_partitions_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        site_partition("home", 0)


def test_site_partitions_size_the_site_keyed_topics_only_when_set():
    assert site_topic_partitions(0) == {}
    specs = {s.name: s.partitions for s in topic_specs(site_topic_partitions(4))}
    assert specs["schedule-requests"] == specs["beliefs-by-site"] == 4
    assert specs["readings.meter"] == 3 and specs["beliefs-shared"] == 1
    assert {s.name: s.partitions for s in topic_specs()}["schedule-requests"] == 1
