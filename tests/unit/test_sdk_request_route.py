"""The SDK keys a schedule request by asset, or by site in the site's partition."""

from __future__ import annotations

from connectors.kafka import site_partition
from connectors.sdk import FlexStreamClient
from schemas.assets import Asset


def client(partitions: int) -> FlexStreamClient:
    """A client whose view of the topic and the registry is set (no broker is reached)."""
    c = FlexStreamClient("127.0.0.1:1", check=False)
    c._request_partitions = partitions
    c._assets = {"home": Asset(name="home"), "ev": Asset(name="ev", parent="home")}
    return c


def test_one_partition_keys_by_asset_and_leaves_the_partition_to_the_producer():
    assert client(1)._request_route("ev") == ("ev", None)


def test_several_partitions_key_by_site_in_the_sites_partition():
    for p in (2, 3, 8):
        assert client(p)._request_route("ev") == ("home", site_partition("home", p))
        assert client(p)._request_route("home") == ("home", site_partition("home", p))
