"""What stands in the way of deleting a sensor, an asset or a report; views forgetting them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.assets import Asset
from schemas.beliefs import Sensor
from schemas.deletion import (
    asset_sensors,
    check_asset_deletable,
    check_report_deletable,
    check_sensor_deletable,
    child_assets,
    sensor_users,
)
from schemas.errors import InputError
from schemas.report_definition import build_definition
from schemas.reporters import load_parameters

SENSORS = {
    n: Sensor(name=n, unit=u)
    for n, u in [
        ("bat", "kW"),
        ("soc-min", "kWh"),
        ("price", "EUR/MWh"),
        ("pv", "kW"),
        ("kpi", "kW"),
    ]
}
SITE = Asset.model_validate(
    {"name": "site", "flex-context": {"consumption-price": {"sensor": "price"}}}
)
BATTERY = Asset.model_validate(
    {
        "name": "battery",
        "parent": "site",
        "flex-model": {
            "sensor": "bat",
            "soc-at-start": "5 kWh",
            "soc-minima": {"sensor": "soc-min"},
        },
    }
)
ASSETS = {"site": SITE, "battery": BATTERY}
REPORT = build_definition(
    "daily-pv",
    "AggregatorReporter",
    {},
    load_parameters(
        {
            "input": [{"name": "pv", "sensor": "pv"}],
            "output": [{"name": "o", "sensor": "kpi"}],
            "window": "PT1H",
        }
    ),  # fmt: skip
)
REPORTS = {"daily-pv": REPORT}


def test_an_asset_names_its_devices_and_the_sensors_of_its_flex_fields():
    assert asset_sensors(BATTERY) == {"bat", "soc-min"}
    assert asset_sensors(SITE) == {"price"}


@pytest.mark.parametrize(
    ("sensor", "users"),
    [
        ("bat", ["asset 'battery'"]),  # a device of the flex-model
        ("soc-min", ["asset 'battery'"]),  # a sensor reference in the flex-model
        ("price", ["asset 'site'"]),  # a sensor reference in the flex-context
        ("pv", ["report 'daily-pv'"]),  # a report input
        ("kpi", ["report 'daily-pv'"]),  # a report output
        ("other", []),
    ],
)
def test_sensor_users_are_assets_and_reports_naming_it(sensor, users):
    assert sensor_users(sensor, ASSETS, REPORTS) == users


def test_a_referenced_sensor_is_refused_naming_the_asset_and_what_to_do():
    with pytest.raises(InputError, match=r"referenced by asset 'battery'; delete or change it"):
        check_sensor_deletable("bat", SENSORS, ASSETS, REPORTS)
    with pytest.raises(InputError, match=r"referenced by report 'daily-pv'"):
        check_sensor_deletable("kpi", SENSORS, ASSETS, REPORTS)


def test_an_unregistered_name_is_refused():
    with pytest.raises(InputError, match=r"sensor 'ghost' is not registered"):
        check_sensor_deletable("ghost", SENSORS, ASSETS, REPORTS)
    with pytest.raises(InputError, match=r"asset 'ghost' is not registered"):
        check_asset_deletable("ghost", ASSETS)
    with pytest.raises(InputError, match=r"report 'ghost' is not registered"):
        check_report_deletable("ghost", REPORTS)


def test_an_unreferenced_sensor_a_leaf_asset_and_a_registered_report_may_go():
    check_sensor_deletable("bat", SENSORS, {"site": SITE}, REPORTS)
    check_asset_deletable("battery", ASSETS)
    check_report_deletable("daily-pv", REPORTS)


def test_an_asset_with_children_is_refused_naming_them():
    assert child_assets("site", ASSETS) == ["battery"]
    with pytest.raises(InputError, match=r"asset 'site' still has child asset\(s\) 'battery'"):
        check_asset_deletable("site", ASSETS)


def test_without_a_terminal_only_yes_confirms():
    from streams.cli.deletion import confirm

    confirm(True, "sensor pv", interactive=False)
    with pytest.raises(InputError, match=r"--yes: not a terminal"):
        confirm(False, "sensor pv", interactive=False)


def test_views_forget_a_tombstoned_entry_and_tell_their_listeners():
    from connectors import registry, report_definitions
    from schemas import serde

    view = registry.RegistryView({"bootstrap.servers": "unused:1"}, "registry")
    told = []
    view.add_listener(lambda kind, name, model: told.append((kind, name, model is None)))

    def failing(kind, name, model):
        raise RuntimeError("a broken listener")

    view.add_listener(failing)  # must not stop the others or the view
    value = serde.encode(
        "RegistryEvent",
        {"kind": "sensor", "name": "pv", "body": SENSORS["pv"].model_dump_json(by_alias=True),
         "updated_at": datetime(2026, 1, 1, tzinfo=UTC)},
    )  # fmt: skip
    view._apply(b"sensor:pv", value, 0, 0)
    view._apply(b"sensor:pv", None, 0, 1)
    view._apply(b"sensor:pv", None, 0, 2)  # a second tombstone changes nothing
    assert "pv" not in view.sensors
    assert told == [("sensor", "pv", False), ("sensor", "pv", True)]

    reports = report_definitions.ReportDefinitionView({"bootstrap.servers": "unused:1"}, "defs")
    seen = []
    reports.add_listener(lambda kind, name, model: seen.append((name, model is None)))
    reports._apply(b"daily-pv", serde.encode("ReportDefinition", REPORT.to_record()), 0, 0)
    reports._apply(b"daily-pv", None, 0, 1)
    assert reports.reports == {} and seen == [("daily-pv", False), ("daily-pv", True)]
