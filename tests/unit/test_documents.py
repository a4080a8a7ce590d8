"""Field paths in user documents: pydantic errors name the nested field as the user wrote it."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, Field

from schemas.beliefs import Sensor
from schemas.documents import field_path, parse_model
from schemas.errors import InputError


@pytest.mark.parametrize(
    ("loc", "path"),
    [
        (("sensors", 2, "unit"), "sensors[2].unit"),
        (("a", "b", "c"), "a.b.c"),
        ((0, "x"), "[0].x"),
        (("m", 1, 2, "soc-max"), "m[1][2].soc-max"),
        ((), ""),
    ],
)
def test_field_path(loc, path):
    assert field_path(loc) == path


class Site(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    sensors: list[Sensor] = Field(default_factory=list)


def test_nested_error_names_item_and_field():
    data = {"name": "home", "sensors": [{"name": "a", "unit": "kW"}, {"name": "b", "unit": "zz"}]}
    with pytest.raises(InputError) as info:
        parse_model(Site, data)
    assert info.value.field == "sensors[1].unit"
    assert str(info.value).startswith("sensors[1].unit: ")


def test_prefix_is_prepended():
    with pytest.raises(InputError) as info:
        parse_model(Site, {"name": "x", "sensors": [{"unit": "kW"}]}, "site")
    assert info.value.field == "site.sensors[0].name"


def test_alias_is_named_as_written():
    with pytest.raises(InputError) as info:
        parse_model(Sensor, {"name": "x", "unit": "kW", "off-grid": "sometimes"})
    assert info.value.field == "off-grid"


def test_more_problems_are_counted():
    with pytest.raises(InputError) as info:
        parse_model(Sensor, {"unit": "zz", "timezone": "Nowhere/Else"})
    assert "(and 2 more problems)" in str(info.value)
    with pytest.raises(InputError) as info:
        parse_model(Sensor, {"name": "x", "unit": "zz", "timezone": "Nowhere/Else"})
    assert "(and 1 more problem)" in str(info.value)


def test_whole_document_error_uses_the_prefix():
    with pytest.raises(InputError) as info:
        parse_model(Sensor, "not a mapping", "sensors[3]")
    assert info.value.field == "sensors[3]"


def test_valid_document_is_returned_as_the_model():
    s = parse_model(Sensor, {"name": "x", "unit": "MW", "event_resolution": "PT5M"})
    assert isinstance(s, Sensor)
    assert s.event_resolution.total_seconds() == 300
