"""Reporter configs and report parameters: loading, validation, field names in errors."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from schemas.errors import InputError
from schemas.reporters import (
    AggregatorReporterConfig,
    PandasReporterConfig,
    ProfitOrLossReporterConfig,
    load_config,
    load_parameters,
    validate_config,
)

PANDAS_YAML = """
reporter: PandasReporter
required_input:
  - {name: price, unit: EUR/kWh}
required_output:
  - {name: tariff, unit: EUR/kWh}
transformations:
  - {df_input: price, df_output: taxed, method: add, args: [0.1]}
  - {df_input: taxed, df_output: tariff, method: mul, args: [1.21]}
"""


def _pandas_config(**step) -> dict:
    base = {"df_input": "a", "df_output": "b", "method": "add", "args": [1]}
    base.update(step)
    return {
        "required_input": [{"name": "a"}],
        "required_output": [{"name": "b"}],
        "transformations": [base],
    }


def test_yaml_and_json_give_the_same_config(tmp_path):
    from_yaml = load_config(PANDAS_YAML)
    doc = {"reporter": "PandasReporter", **from_yaml.model_dump()}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    assert isinstance(from_yaml, PandasReporterConfig)
    assert load_config(path) == from_yaml
    assert load_config(str(path)) == from_yaml
    assert [s.method for s in from_yaml.transformations] == ["add", "mul"]


def test_reporter_must_be_named():
    with pytest.raises(InputError) as err:
        load_config("method: sum")
    assert err.value.field == "reporter"
    config = load_config("method: mean\nweights: {consumption: -1}", reporter="AggregatorReporter")
    assert isinstance(config, AggregatorReporterConfig)
    assert config.weights == {"consumption": -1.0}


def test_unknown_aggregation_method_names_the_field():
    with pytest.raises(InputError) as err:
        validate_config("AggregatorReporter", {"method": "mode"})
    assert err.value.field == "method"


@pytest.mark.parametrize("method", ["eval", "query", "pipe", "apply", "agg", "to_pickle"])
def test_code_running_methods_are_rejected_with_the_step_named(method):
    doc = _pandas_config(method=method, args=["a + 1"])
    doc["transformations"].insert(0, {"df_input": "a", "df_output": "c", "method": "abs"})
    with pytest.raises(InputError, match="not allowed") as err:
        validate_config("PandasReporter", doc)
    assert err.value.field == "transformations[1].method"


def test_non_primitive_argument_is_rejected_with_its_path():
    doc = _pandas_config(args=[1, [2, lambda x: x]])
    with pytest.raises(InputError, match="only str, int, float") as err:
        validate_config("PandasReporter", doc)
    assert err.value.field == "transformations[0].args[1][1]"
    doc = _pandas_config(args=[], kwargs={"other": {"nested": object()}})
    with pytest.raises(InputError) as err:
        validate_config("PandasReporter", doc)
    assert err.value.field == "transformations[0].kwargs.other.nested"


def test_frame_references_must_exist_before_the_step():
    doc = _pandas_config(args=["@later"])
    with pytest.raises(InputError, match="@later") as err:
        validate_config("PandasReporter", doc)
    assert err.value.field == "transformations[0].args[0]"


def test_required_output_must_be_produced():
    doc = _pandas_config(df_output="c")
    with pytest.raises(InputError) as err:
        validate_config("PandasReporter", doc)
    assert err.value.field == "required_output[0].name"


def test_typo_in_a_step_names_it():
    doc = _pandas_config()
    doc["transformations"][0]["methd"] = "add"
    with pytest.raises(InputError, match="Extra inputs") as err:
        validate_config("PandasReporter", doc)
    assert err.value.field == "transformations[0].methd"


def test_profit_or_loss_price_is_alias_or_price_quantity():
    config = load_config(
        "reporter: ProfitOrLossReporter\nconsumption_price: price\nproduction_price: 0.07 EUR/kWh"
    )
    assert isinstance(config, ProfitOrLossReporterConfig)
    assert config.loss_is_positive is True
    assert config.price_aliases() == ["price"]
    assert config.fixed_price(config.price("production")).to("EUR/MWh").magnitude == (
        pytest.approx(70.0)
    )
    for bad in ("0.25 kW", 0.25, "3 apples/kWh"):
        with pytest.raises(InputError) as err:
            validate_config("ProfitOrLossReporter", {"consumption_price": bad})
        assert err.value.field == "consumption_price"


def test_parameters_accept_iso_durations_and_alias_key():
    params = load_parameters(
        """
input:
  - {alias: pv, sensor: 3, sources: [meter, forecaster]}
  - {name: consumption, sensor: house}
output: [{name: net, sensor: net-kwh}]
window: P1D
resolution: PT1H
timezone: Europe/Amsterdam
start: 2026-03-29T00:00:00+01:00
"""
    )
    assert params.input[0].name == "pv"
    assert params.input[0].sensor == "3"
    assert params.input[0].sources == ["meter", "forecaster"]
    assert params.window == timedelta(days=1)
    assert params.output_resolution == timedelta(hours=1)
    assert params.start.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("window: P1M", "window"),
        ("window: PT1H\nresolution: PT7M", "window"),
        ("window: P1D\ntimezone: Mars/Olympus", "timezone"),
        ("window: P1D\nstart: 2026-03-29T00:00:00", "start"),
    ],
)
def test_parameter_errors_name_the_field(text, field):
    doc = "input: [{name: a, sensor: s}]\noutput: [{name: o, sensor: t}]\n" + text
    with pytest.raises(InputError) as err:
        load_parameters(doc)
    assert err.value.field == field


@pytest.mark.parametrize(
    ("step", "field", "says"),
    [
        ({"args": ["1ns"]}, "args[0]", "'1ns' is finer than the finest allowed, one second"),
        ({"args": ["500ms"]}, "args[0]", "finer than the finest allowed"),
        ({"args": [], "kwargs": {"rule": "1us"}}, "kwargs.rule", "finer than"),
        ({"args": ["0s"]}, "args[0]", "must be positive"),
        ({"args": ["-1h"]}, "args[0]", "must be positive"),
        ({"args": ["PT15M"]}, "args[0]", "'PT15M' is not a pandas frequency"),
        ({"args": [900]}, "args[0]", "must be written as text"),
    ],
)
def test_resample_rules_finer_than_a_second_are_refused_naming_the_field(step, field, says):
    with pytest.raises(InputError) as err:
        validate_config("PandasReporter", _pandas_config(method="resample", **step))
    assert err.value.field == f"transformations[0].{field}"
    assert says in str(err.value)


@pytest.mark.parametrize("rule", ["1s", "15min", "1h", "1D", "W", "MS"])
def test_resample_rules_of_a_second_or_coarser_are_accepted(rule):
    config = validate_config("PandasReporter", _pandas_config(method="resample", args=[rule]))
    assert config.transformations[0].args == [rule]
