"""A site's requests read the site's state first, then the shared state; the routes of beliefs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from schemas.assets import Asset
from schemas.beliefs import BeliefColumns
from schemas.times import to_us
from streams.beliefs.state import BeliefState
from streams.scheduling.recent import RecentAnswers
from streams.sites.agent import SitePartitionsError, SiteState, check_partitions
from streams.sites.lookup import SiteLookup, site_key, split_key
from streams.sites.mapping import build_site_map

NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def beliefs(sensor: str, values: list[float], start: datetime = NOW) -> BeliefColumns:
    starts = np.asarray([to_us(start + i * HOUR) for i in range(len(values))], dtype=np.int64)
    n = len(values)
    return BeliefColumns(
        sensor=[sensor],
        event_start_us=[starts],
        event_resolution_s=[np.full(n, 3600, dtype=np.uint32)],
        belief_time_us=[np.full(n, to_us(NOW - HOUR), dtype=np.int64)],
        source=["meter"],
        cumulative_probability=[np.full(n, 0.5)],
        event_value=[np.asarray(values, dtype=np.float64)],
        counts=[n],
    )


def state(*parts: BeliefColumns) -> BeliefState:
    s = BeliefState({}, lambda: NOW)
    for p in parts:
        s.update(p)
    return s


def test_a_site_key_splits_back_and_a_plain_name_has_no_site():
    assert split_key(site_key("home", "bat-soc")) == ("home", "bat-soc")
    assert split_key("da-price") == ("", "da-price")


def test_the_sites_own_state_comes_first():
    own = state(beliefs(site_key("home", "price"), [1.0, 2.0]))
    shared = state(beliefs("price", [9.0, 9.0]))
    s = SiteLookup("home", own, shared).series("price", NOW, NOW + 2 * HOUR)
    assert s.tolist() == [1.0, 2.0] and s.name == "price"


def test_a_sensor_the_site_does_not_hold_comes_from_the_shared_state():
    own = state(beliefs(site_key("home", "soc"), [4.0]))
    shared = state(beliefs("price", [9.0, 8.0]))
    look = SiteLookup("home", own, shared)
    assert look.series("price", NOW, NOW + 2 * HOUR).tolist() == [9.0, 8.0]
    assert look.latest_at("price", NOW + HOUR) == (NOW + HOUR, 8.0)
    assert look.latest_at("soc", NOW + HOUR) == (NOW, 4.0)


def test_another_sites_state_is_not_read():
    own = state(beliefs(site_key("shop", "soc"), [4.0]))
    look = SiteLookup("home", own, state())
    assert look.series("soc", NOW, NOW + HOUR).empty
    assert look.latest_at("soc", NOW + HOUR) is None


def test_beliefs_route_to_every_site_that_reads_them_and_prices_to_the_shared_state():
    docs = [
        {
            "name": n,
            "flex-model": {"sensor": f"{n}-power", "soc-at-start": {"sensor": "shared-soc"}},
        }
        for n in ("home", "shop")
    ]
    docs[0]["flex-context"] = {"consumption-price": {"sensor": "price"}}
    m = build_site_map({d["name"]: Asset.model_validate(d) for d in docs}, shared_above=10)
    sites = SiteState(3, lambda: m, state(), state(), lambda: {0})
    cols = BeliefColumns.concat(
        [beliefs("shared-soc", [1.0]), beliefs("price", [2.0]), beliefs("nobody", [3.0])]
    )
    routed, shared = sites.routes(cols)
    assert routed == [("home", 0), ("shop", 0)] and shared == [1]
    assert sites.owns("home") == (sites.partition_of("home") == 0)


@pytest.mark.parametrize("size", [1, 3])
def test_recent_answers_keep_the_newest(size):
    recent: RecentAnswers[str] = RecentAnswers(size)
    for i in range(5):
        recent.put(f"r{i}", "home", f"answer {i}")
    assert len(recent) == size and recent.get("r4", "home") == "answer 4"
    assert recent.get("r0", "home") is None and recent.get("r4", "shop") is None


def test_recent_answers_need_room_for_one():
    with pytest.raises(ValueError, match="at least 1"):
        RecentAnswers(0)


def test_topics_with_other_partition_counts_are_refused_naming_the_setting():
    check_partitions({"p.schedule-requests": 3, "p.beliefs-by-site": 3}, 3)
    with pytest.raises(SitePartitionsError) as err:
        check_partitions({"p.schedule-requests": 1, "p.beliefs-by-site": 3}, 3)
    assert err.value.field == "FLEXSTREAM_WORKER_SITE_PARTITIONS"
    assert "p.schedule-requests has 1" in str(err.value) and "flexstream up" in str(err.value)


def test_a_missing_shared_topic_is_refused_whatever_the_others_have():
    found = {"p.schedule-requests": 3, "p.beliefs-by-site": 3, "p.beliefs-shared": 1}
    check_partitions(found, 3, "p.beliefs-shared")
    with pytest.raises(SitePartitionsError, match="p.beliefs-shared is missing"):
        check_partitions({**found, "p.beliefs-shared": 0}, 3, "p.beliefs-shared")
